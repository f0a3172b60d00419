// The entry point of `camkit`: ArgumentParser's `main`, except for how a command-line error is shown.
//
// ArgumentParser's own `exit(withError:)` prints a parse error (unknown option, missing value, a
// value that is not a number) or a `ValidationError` as several lines: "Error: ...", an optional
// "Help:" line, the usage and "See 'camkit explain --help' for more information.". The CLI's rule
// (docs: CONVENTIONS.md, Errors; issue 5, "Bad input") is one line on stderr per error and a
// sysexits(3) status, so such errors become
//
//     camkit: Unknown option '--colour'; see 'camkit explain --help'
//
// with exit status 64 (EX_USAGE, the status ArgumentParser itself uses on Linux). Help, version
// and completion-script requests are left to ArgumentParser (printed on stdout, status 0), and an
// `ExitCode` thrown by a command (see `reportingErrors`) ends the process silently with its code.
//
// Commands that `print` their results write through C's buffered stdout, whose errors are
// otherwise ignored at exit: a run whose stdout went to a full disk would end with status 0. The
// buffers are therefore flushed before a successful exit, and a failure is status 74 (EX_IOERR),
// as GNU coreutils' `close_stdout` does.

import ArgumentParser
import Foundation

extension CAMKitCommand {
    /// Parses the command line, runs the chosen subcommand, flushes stdout and exits; errors are
    /// reported by ``exitReporting(_:)``.
    static func main() async {
        do {
            var command = try await asyncParseAsRoot(nil)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            if fflush(nil) != 0 {
                throw StandardOutput.failure(reason: String(cString: strerror(errno)))
            }
        } catch {
            exitReporting(error)
        }
    }

    /// Ends the process for `error`: help and version text as ArgumentParser prints it (status 0),
    /// a thrown `ExitCode` silently, a command-line error as one line with status 64, and any
    /// other error as one line with its ``ExitStatus``.
    static func exitReporting(_ error: any Error) -> Never {
        if error is ExitCode || exitCode(for: error) == .success {
            exit(withError: error)
        }
        if exitCode(for: error) == .validationFailure {
            StandardError.write(commandLineErrorLine(for: error) + "\n")
            exit(withError: ExitCode(ExitStatus.usage.rawValue))
        }
        StandardError.write(diagnosticLine(for: error) + "\n")
        exit(withError: ExitCode(ExitStatus(for: error).rawValue))
    }

    /// `camkit: <ArgumentParser's message>; see '<the subcommand> --help'`, on one line.
    static func commandLineErrorLine(for error: any Error) -> String {
        var message = self.message(for: error).trimmingCharacters(in: .whitespacesAndNewlines)
        message = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        if message.hasSuffix(".") { message.removeLast() }
        return "camkit: \(message); see '\(helpCommand(for: error))'"
    }

    /// The help command ArgumentParser suggests for `error` ("See 'camkit explain --help' for more
    /// information." in its full message), so that the hint names the subcommand that failed.
    private static func helpCommand(for error: any Error) -> String {
        let full = fullMessage(for: error, columns: 1000)
        for line in full.split(whereSeparator: \.isNewline) {
            guard let start = line.range(of: "See '"), let end = line.range(of: "' for more information") else { continue }
            if start.upperBound < end.lowerBound { return String(line[start.upperBound..<end.lowerBound]) }
        }
        return "camkit --help"
    }
}
