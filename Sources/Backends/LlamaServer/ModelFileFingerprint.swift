import Foundation

/// Names a model file by its content, so that every path records exactly which weights drew it
/// (two files called `model.gguf` are not the same model).
public enum ModelFileFingerprint {
    /// `<file name>@fnv1a64:<16 hex digits>`: FNV-1a over the file's 64-bit words (a
    /// fingerprint, not a cryptographic hash; it only has to tell model files apart).
    /// - Throws: ``BackendError`` if the file cannot be read.
    public static func of(path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw BackendError("cannot read the model file \(path)")
        }
        defer { try? handle.close() }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        var length: UInt64 = 0
        while true {
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: 4 << 20) ?? Data()
            } catch {
                throw BackendError("reading the model file \(path) failed: \(error)")
            }
            if chunk.isEmpty { break }
            length += UInt64(chunk.count)
            chunk.withUnsafeBytes { bytes in
                let words = bytes.count / 8
                for word in 0 ..< words {
                    hash = (hash ^ bytes.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self)) &* 0x100_0000_01B3
                }
                for byte in bytes[(words * 8)...] {
                    hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
                }
            }
        }
        hash = (hash ^ length) &* 0x100_0000_01B3
        let hex = String(hash, radix: 16)
        return "\(URL(fileURLWithPath: path).lastPathComponent)@fnv1a64:\(String(repeating: "0", count: 16 - hex.count))\(hex)"
    }
}
