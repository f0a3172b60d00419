// CAMKit
