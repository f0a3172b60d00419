/// CAM methods by the names users type, as MMPretrain's `vis_cam.py` accepts them: case and
/// punctuation do not matter (`GradCAM++`, `gradcamplusplus` and `grad-cam++` are one method).
public enum CAMMethodName {
    /// The canonical names, in the order `--help` lists them.
    public static let all = ["gradcam", "gradcam++", "xgradcam", "eigencam", "eigengradcam", "layercam",
                             "hirescam", "gradcamelementwise", "scorecam", "ablationcam", "fullgrad", "cam",
                             "randomcam"]

    /// The method a user's name denotes.
    /// - Parameters:
    ///   - batchSize: the forward-pass batch of ScoreCAM and AblationCAM (`nil`: the reference's 16 / 32).
    /// - Throws: ``CAMKitError/unknownMethod(_:valid:)`` listing the valid names.
    public static func method(named name: String, batchSize: Int? = nil) throws -> any CAMMethod {
        let key = name.lowercased().replacingOccurrences(of: "plusplus", with: "++")
            .filter { $0.isLetter || $0.isNumber || $0 == "+" }
        switch key {
        case "gradcam": return GradCAM()
        case "gradcam++", "gradcampp": return GradCAMPlusPlus()
        case "xgradcam": return XGradCAM()
        case "eigencam": return EigenCAM()
        case "eigengradcam": return EigenGradCAM()
        case "layercam": return LayerCAM()
        case "hirescam": return HiResCAM()
        case "gradcamelementwise": return GradCAMElementWise()
        case "scorecam": return ScoreCAM(batchSize: batchSize ?? 16)
        case "ablationcam": return AblationCAM(batchSize: batchSize ?? 32)
        case "fullgrad": return FullGrad()
        case "cam", "classiccam": return ClassicCAM()
        case "randomcam": return RandomCAM()
        default: throw CAMKitError.unknownMethod(name, valid: all)
        }
    }
}
