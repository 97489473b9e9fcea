import ArgumentParser
import Glibc
import HotplugDaemon

extension ExitStatus {
    /// What a command throws to end with this status. Mistakes in the command line are thrown as
    /// `ValidationError` instead, which ArgumentParser prints with the usage line and ends with
    /// the same 64.
    var code: ExitCode { ExitCode(rawValue) }

    /// Prints `hotplugd: message` on standard error and returns what to throw.
    func reporting(_ message: String) -> ExitCode {
        printError(message)
        return code
    }
}

func printError(_ message: String) {
    var standardError = FileHandleOutputStream(fd: 2)
    print("hotplugd: \(message)", to: &standardError)
}

struct FileHandleOutputStream: TextOutputStream {
    let fd: Int32
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        // Nothing is left to report a failed write of a message to.
        _ = Glibc.write(fd, &bytes, bytes.count)
    }
}
