import Foundation

/// The lines of a file, read lazily in 64 KiB chunks: memory does not depend on the file's size.
public struct FileLines: Sequence, Sendable {
    public let path: String

    /// - Throws: If the file cannot be opened.
    public init(path: String) throws {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        self.path = path
    }

    public func makeIterator() -> Iterator { Iterator(handle: FileHandle(forReadingAtPath: path)) }

    public struct Iterator: IteratorProtocol {
        let handle: FileHandle?
        var buffer: [UInt8] = []
        var start = 0
        var finished = false

        public mutating func next() -> String? {
            while true {
                if let newline = buffer[start...].firstIndex(of: 0x0A) {
                    let line = String(decoding: buffer[start ..< newline], as: UTF8.self)
                    start = newline + 1
                    return line
                }
                if finished {
                    guard start < buffer.count else { return nil }
                    let line = String(decoding: buffer[start...], as: UTF8.self)
                    start = buffer.count
                    return line
                }
                buffer.removeFirst(start)
                start = 0
                let chunk = (try? handle?.read(upToCount: 64 << 10)) ?? nil
                if let chunk, !chunk.isEmpty {
                    buffer.append(contentsOf: chunk)
                } else {
                    finished = true
                    try? handle?.close()
                }
            }
        }
    }
}
