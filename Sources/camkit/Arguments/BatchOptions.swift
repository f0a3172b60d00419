import ArgumentParser
import CAMKit
import Foundation

/// The options of commands that take many photos: directories, parallel jobs, progress.
struct BatchOptions: ParsableArguments {
    @Flag(name: [.customShort("r"), .long], help: "Also take the images in subdirectories of directory arguments (outputs mirror the folders under --save-path).")
    var recursive = false

    @Option(name: [.customShort("j"), .long], help: "Photos processed at once; the cores are shared between them (default 1: one photo at a time, using all cores).")
    var jobs: Int = 1

    @Option(name: .long, help: "Threads in all for CAMKit's kernels and the BLAS (default: all cores); --jobs share them.")
    var threads: Int?

    @Flag(name: [.customShort("q"), .long], help: "No progress bar and no summary on stderr (errors are still printed).")
    var quiet = false

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Splits the threads (`--threads`, default all cores) between `jobs` concurrent photos: each
    /// photo's kernels (the BLAS included) get `max(1, threads / jobs)`.
    func configureThreads() {
        guard jobs > 1 || threads != nil else { return }
        let total = threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount)
        let perJob = max(1, total / jobs)
        ComputeSettings.threadCount = perJob
    }
}
