import Foundation
import Glibc
import HotplugCore
import HotplugDaemon
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

    /// The directory as the daemon holds it.
    var files: OwnDirectory { OwnDirectory(directory) }

    func contents(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    @Test func aFileIsReplacedWholeWithItsModeAndNoTemporaryLeft() throws {
        let files = files
        try files.write("state", "one\n", mode: 0o600)
        try files.write("state", "two\n", mode: 0o644)
        #expect(contents("\(directory)/state") == "two\n")
        var status = stat()
        #expect(stat("\(directory)/state", &status) == 0 && status.st_mode & 0o777 == 0o644)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["state"])
        #expect(try files.read("state") == "two\n")
    }

    @Test func aLinkPlantedAtTheNameIsReplacedNotFollowed() throws {
        let outside = "\(directory)-outside"
        try "precious\n".write(toFile: outside, atomically: false, encoding: .utf8)
        defer { unlink(outside) }
        #expect(symlink(outside, "\(directory)/intent") == 0)
        #expect(throws: Errno.tooManySymbolicLinkLevels) { try files.read("intent") }
        try files.write("intent", "mine\n")
        #expect(contents(outside) == "precious\n")
        #expect(contents("\(directory)/intent") == "mine\n")
    }

    @Test func aHardLinkPlantedAtTheNameIsNeitherTruncatedNorChmoded() throws {
        let outside = "\(directory)-outside"
        try "precious\n".write(toFile: outside, atomically: false, encoding: .utf8)
        chmod(outside, 0o600)
        defer { unlink(outside) }
        #expect(link(outside, "\(directory)/hotplugd.prom") == 0)
        try files.write("hotplugd.prom", "metrics\n")
        #expect(contents(outside) == "precious\n")
        var status = stat()
        #expect(stat(outside, &status) == 0 && status.st_mode & 0o777 == 0o600)
    }

    @Test func aFIFOPlantedAtTheNameNeitherBlocksTheReaderNorTheWriter() throws {
        #expect(mkfifo("\(directory)/boot-kernel-pages", 0o644) == 0)
        #expect(mkfifo("\(directory)/hotplugd.prom.tmp", 0o644) == 0)  // The name of old.
        #expect(throws: Errno.invalidArgument) { try files.read("boot-kernel-pages") }
        try files.write("boot-kernel-pages", "boot x\n")
        try files.write("hotplugd.prom", "metrics\n")
        #expect(contents("\(directory)/boot-kernel-pages") == "boot x\n")
    }

    @Test func aDirectoryThatIsALinkIsRefused() throws {
        let real = "\(directory)/real"
        try FileManager.default.createDirectory(atPath: real, withIntermediateDirectories: false)
        #expect(symlink(real, "\(directory)/linked") == 0)
        #expect(throws: Errno.notDirectory) {
            try OwnDirectory("\(directory)/linked").write("intent", "x\n")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: real).isEmpty)
    }

    /// The directory is looked up once: moved away after the first write, and a link to another put
    /// in its place, the next write still goes to the one first opened, never through the link.
    @Test func theDirectoryIsOpenedOnceAndHeld() throws {
        let held = "\(directory)/held"
        let moved = "\(directory)/moved"
        let other = "\(directory)/other"
        for path in [held, other] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        }
        let files = OwnDirectory(held)
        try files.write("intent", "one\n")
        #expect(rename(held, moved) == 0)
        #expect(symlink(other, held) == 0)
        try files.write("intent", "two\n")
        #expect(try files.read("intent") == "two\n")
        try files.remove("intent.absent")
        #expect(contents("\(moved)/intent") == "two\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: other).isEmpty)
    }

    /// The intent store's read-modify-write, its lock file included, stays in the directory it opened.
    @Test func theIntentStoreKeepsToTheDirectoryItOpened() throws {
        let store = IntentStore(directory: "\(directory)/state")
        try store.update { $0[DeviceID(name: "cpu2")!] = .init(origin: .command, since: 5) }
        #expect(rename(store.directory, "\(directory)/moved") == 0)
        #expect(mkdir(store.directory, 0o755) == 0)
        try store.update { $0[DeviceID(name: "cpu3")!] = .init(origin: .command, since: 5) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory).isEmpty)
        let intent = contents("\(directory)/moved/intent") ?? ""
        #expect(intent.contains("cpu2-3 command 5"), "\(intent)")
    }
}
