import ArgumentParser
import Foundation
import PixconvCore

/// `pixconv`: converts, quantizes, runs and verifies PixArt-α checkpoints.
///
/// Exit status: 0 success, 1 bad input or a failed check, 2 usage error.
struct Pixconv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pixconv",
        abstract: "Make PixArt-α checkpoints portable, small and trustworthy.",
        discussion: """
            Examples:
              pixconv inspect PixArt-XL-2-512x512.pth
              pixconv convert PixArt-XL-2-512x512.pth t5-v1_1-xxl/ sd-vae-ft-ema/ -o pixart-512.q8_0.gguf --type q8_0
              pixconv generate --model pixart-512.q8_0.gguf --prompt "a red fox in the snow" -o fox.png
              pixconv verify --model pixart-512.q8_0.gguf --reference reference-bundle/
            """,
        version: PixconvVersion.string,
        subcommands: [Inspect.self, Convert.self, Generate.self, Verify.self]
    )
}

/// A failure that the user caused by how pixconv was called (exit status 2).
struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A check that ran and failed (exit status 1), already reported.
struct CheckFailed: Error, CustomStringConvertible {
    var description: String
}

enum PixconvVersion {
    static let string = "0.1.0"
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("pixconv: " + terminalSafe(message) + "\n").utf8))
}

// A file-size limit (ulimit -f) must surface as an EFBIG write error, not kill the process.
signal(SIGXFSZ, SIG_IGN)
// A mapped input truncated by another process must be an error naming it, not a crash that leaves
// a preallocated temporary file behind.
FileGuard.install()

let command: ParsableCommand
do {
    command = try Pixconv.parseAsRoot()
} catch {
    let code = Pixconv.exitCode(for: error)
    if code == .success { Pixconv.exit(withError: error) }
    FileHandle.standardError.write(Data((Pixconv.fullMessage(for: error) + "\n").utf8))
    exit(2)
}
do {
    var runnable = command
    try runnable.run()
} catch let error as UsageError {
    printError(error.description)
    exit(2)
} catch let error as ValidationError {
    printError(error.message)
    exit(2)
} catch let error as CheckFailed {
    if !error.description.isEmpty { printError(error.description) }
    exit(1)
} catch {
    // Help and version requests reach here from ArgumentParser's own commands.
    if Pixconv.exitCode(for: error) == .success { Pixconv.exit(withError: error) }
    if String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
        FileHandle.standardError.write(Data((Pixconv.fullMessage(for: error) + "\n").utf8))
        exit(2)
    }
    printError(String(describing: error))
    exit(1)
}
