import HotplugCore
import HotplugSystem

import struct SystemPackage.Errno

/// Loads the configuration file, or the defaults when the default file does not exist.
public enum ConfigLoader {
    /// - Parameter required: when the path was given explicitly, a missing file is an error;
    ///   the default path may be absent, and then the defaults apply.
    public static func load(path: String, required: Bool) throws(ConfigError) -> Config {
        let bytes: [UInt8]
        do {
            bytes = try TextFile.readBytes(path)
        } catch let error as Errno where error == .noSuchFileOrDirectory && !required {
            return Config()
        } catch {
            throw ConfigError(file: path, line: nil, key: "", message: "cannot read: \(error)")
        }
        return try ConfigParser.parse(bytes: bytes, file: path)
    }
}
