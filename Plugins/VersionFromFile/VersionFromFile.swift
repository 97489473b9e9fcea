import Foundation
import PackagePlugin

/// Writes `packageVersion` from the VERSION file at the package root into a generated source file.
/// A build tool plugin rather than `git describe` or a Makefile step: a plain `swift build` of a
/// fresh clone without tags gets the same version as the Debian package and the man pages, and a
/// change to VERSION rebuilds the binary (the file is the command's input).
@main
struct VersionFromFile: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let version = context.package.directoryURL.appending(path: "VERSION")
        let output = context.pluginWorkDirectoryURL.appending(path: "PackageVersion.swift")
        let script = #"printf 'let packageVersion = "%s"\n' "$(cat "$1")" > "$2""#
        return [
            .buildCommand(
                displayName: "Generating PackageVersion.swift from VERSION",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", script, "sh", version.path, output.path],
                inputFiles: [version],
                outputFiles: [output]
            )
        ]
    }
}
