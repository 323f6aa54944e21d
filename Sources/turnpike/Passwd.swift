import ArgumentParser
import Broker
import Foundation

/// `turnpike passwd`: adds, changes or deletes a user in a password file (mosquitto_passwd's
/// format, PBKDF2-SHA512).
struct Passwd: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add, change or delete a user in a password file.",
        discussion: """
            Without -b the password is asked for twice on the terminal, without echo. Lines are \
            user:$7$iterations$salt$hash (PBKDF2-HMAC-SHA512), the format of mosquitto_passwd 2.0, \
            so files work with either broker. Other users' lines are kept as they are.
            """)

    @Argument(help: "The password file.")
    var file: String

    @Argument(help: "The user name (no ':').")
    var user: String

    @Option(name: .customShort("b"), help: "The password, for scripts (visible in the process list).")
    var password: String?

    @Flag(name: .customShort("c"), help: "Create the file, replacing any existing one.")
    var create = false

    @Flag(name: .customShort("D"), help: "Delete the user.")
    var delete = false

    @Option(name: .long, help: "PBKDF2 iterations for the new hash.")
    var iterations: Int = PasswordFile.defaultIterations

    func validate() throws {
        if user.isEmpty || user.contains(":") || user.contains("\n") || user.contains("\r") {
            throw ValidationError("the user name must be non-empty and contain no ':' or line break")
        }
        if iterations < 1 || iterations > Int(Int32.max) { throw ValidationError("--iterations must be 1...\(Int32.max)") }
        if delete && (create || password != nil) { throw ValidationError("-D takes neither -c nor -b") }
    }

    func run() throws {
        var lines: [String] = []
        if !create {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                fail("cannot read \(file) (use -c to create it)")
            }
            lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        }
        let prefix = user + ":"
        let existed = lines.contains { $0.hasPrefix(prefix) }
        lines.removeAll { $0.hasPrefix(prefix) }
        if delete {
            guard existed else { fail("user '\(user)' is not in \(file)") }
        } else {
            let pass = try password ?? Self.promptTwice()
            guard let line = PasswordFile.makeLine(user: user, password: Array(pass.utf8), iterations: iterations) else {
                fail("cannot hash the password (no random source?)")
            }
            lines.append(line)
        }
        let text = lines.map { $0 + "\n" }.joined()
        // Written next to the file, then renamed over it: a crash never leaves half a file.
        let tmp = file + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            fail("cannot write \(tmp)")
        }
        guard rename(tmp, file) == 0 else {
            unlink(tmp)
            fail("cannot replace \(file): \(String(cString: strerror(errno)))")
        }
    }

    private func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("turnpike passwd: \(message)\n".utf8))
        Foundation.exit(1)
    }

    /// Reads the password twice without echo; refuses a mismatch or an empty password.
    static func promptTwice() throws -> String {
        let first = readSecret("Password: ")
        let second = readSecret("Reenter password: ")
        guard let first, let second else { throw ValidationError("no password given") }
        guard first == second else { throw ValidationError("passwords do not match") }
        guard !first.isEmpty else { throw ValidationError("empty password") }
        return first
    }

    private static func readSecret(_ prompt: String) -> String? {
        FileHandle.standardError.write(Data(prompt.utf8))
        var saved = termios()
        let isTerminal = tcgetattr(STDIN_FILENO, &saved) == 0
        if isTerminal {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
        }
        defer {
            if isTerminal {
                tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
                FileHandle.standardError.write(Data("\n".utf8))
            }
        }
        return readLine(strippingNewline: true)
    }
}
