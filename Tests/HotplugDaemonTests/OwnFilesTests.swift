import Foundation
import Glibc
import HotplugSystem
import Testing

import struct SystemPackage.Errno

/// hotplugd's own files (intent, boot baseline, kernel-online record, metrics) in directories
/// others may write in: nothing planted at a name is followed, opened, truncated or waited on.
@Suite struct OwnFilesTests {
    let directory: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-files-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
    }

    func contents(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    @Test func aFileIsReplacedWholeWithItsModeAndNoTemporaryLeft() throws {
        try TextFile.write("\(directory)/state", "one\n", mode: 0o600)
        try TextFile.write("\(directory)/state", "two\n", mode: 0o644)
        #expect(contents("\(directory)/state") == "two\n")
        var status = stat()
        #expect(stat("\(directory)/state", &status) == 0 && status.st_mode & 0o777 == 0o644)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["state"])
        #expect(try TextFile.readOwn("\(directory)/state") == "two\n")
    }

    @Test func aLinkPlantedAtTheNameIsReplacedNotFollowed() throws {
        let outside = "\(directory)-outside"
        try "precious\n".write(toFile: outside, atomically: false, encoding: .utf8)
        defer { unlink(outside) }
        #expect(symlink(outside, "\(directory)/intent") == 0)
        #expect(throws: Errno.tooManySymbolicLinkLevels) { try TextFile.readOwn("\(directory)/intent") }
        try TextFile.write("\(directory)/intent", "mine\n")
        #expect(contents(outside) == "precious\n")
        #expect(contents("\(directory)/intent") == "mine\n")
    }

    @Test func aHardLinkPlantedAtTheNameIsNeitherTruncatedNorChmoded() throws {
        let outside = "\(directory)-outside"
        try "precious\n".write(toFile: outside, atomically: false, encoding: .utf8)
        chmod(outside, 0o600)
        defer { unlink(outside) }
        #expect(link(outside, "\(directory)/hotplugd.prom") == 0)
        try TextFile.write("\(directory)/hotplugd.prom", "metrics\n")
        #expect(contents(outside) == "precious\n")
        var status = stat()
        #expect(stat(outside, &status) == 0 && status.st_mode & 0o777 == 0o600)
    }

    @Test func aFIFOPlantedAtTheNameNeitherBlocksTheReaderNorTheWriter() throws {
        #expect(mkfifo("\(directory)/boot-kernel-pages", 0o644) == 0)
        #expect(mkfifo("\(directory)/hotplugd.prom.tmp", 0o644) == 0)  // The name of old.
        #expect(throws: Errno.invalidArgument) { try TextFile.readOwn("\(directory)/boot-kernel-pages") }
        try TextFile.write("\(directory)/boot-kernel-pages", "boot x\n")
        try TextFile.write("\(directory)/hotplugd.prom", "metrics\n")
        #expect(contents("\(directory)/boot-kernel-pages") == "boot x\n")
    }

    @Test func aDirectoryThatIsALinkIsRefused() throws {
        let real = "\(directory)/real"
        try FileManager.default.createDirectory(atPath: real, withIntermediateDirectories: false)
        #expect(symlink(real, "\(directory)/linked") == 0)
        #expect(throws: Errno.self) { try TextFile.write("\(directory)/linked/intent", "x\n") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: real).isEmpty)
    }
}
