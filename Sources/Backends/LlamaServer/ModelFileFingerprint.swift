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

    /// The 16 hex digits of a folder's content (an adapter or a Hugging Face model folder):
    /// FNV-1a over each regular file's relative path and fingerprint, in path order. The same
    /// files give the same digits on any run; a retrained adapter gives new ones.
    /// - Throws: ``BackendError`` if the folder or a file cannot be read.
    public static func digits(ofFolder path: String) throws -> String {
        let root = URL(fileURLWithPath: path).standardizedFileURL
        guard let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else {
            throw BackendError("cannot read the model folder \(path)")
        }
        var files: [(relative: String, url: URL)] = []
        for case let url as URL in enumerator where (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true {
            let relative = String(url.standardizedFileURL.path.dropFirst(root.path.count + 1))
            files.append((relative, url))
        }
        guard !files.isEmpty else { throw BackendError("the model folder \(path) holds no file") }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for file in files.sorted(by: { $0.relative < $1.relative }) {
            for byte in Array((file.relative + "\u{0}" + (try of(path: file.url.path)) + "\u{0}").utf8) {
                hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
            }
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
