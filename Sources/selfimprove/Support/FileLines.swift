import Foundation

/// The lines of a file, read lazily in 64 KiB chunks: memory does not depend on the file's size.
struct FileLines: Sequence, Sendable {
    let path: String

    /// - Throws: If the file cannot be opened.
    init(path: String) throws {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        self.path = path
    }

    func makeIterator() -> Iterator { Iterator(handle: FileHandle(forReadingAtPath: path)) }

    struct Iterator: IteratorProtocol {
        let handle: FileHandle?
        var buffer: [UInt8] = []
        var start = 0
        var finished = false

        mutating func next() -> String? {
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

/// Appends JSON lines to a file, buffering writes.
final class JSONLinesWriter {
    private let handle: FileHandle
    private var pending = Data()
    private let encoder: JSONEncoder

    init(path: String) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        try handle.truncate(atOffset: 0)
        self.handle = handle
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    func write<Value: Encodable>(_ value: Value) throws {
        pending.append(try encoder.encode(value))
        pending.append(0x0A)
        if pending.count >= 1 << 20 { try flush() }
    }

    func flush() throws {
        guard !pending.isEmpty else { return }
        try handle.write(contentsOf: pending)
        pending.removeAll(keepingCapacity: true)
    }

    /// Flushes, syncs to disk and closes.
    func close() throws {
        try flush()
        try handle.synchronize()
        try handle.close()
    }
}
