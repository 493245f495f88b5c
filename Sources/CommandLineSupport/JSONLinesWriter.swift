import Foundation

/// Appends JSON lines to a file, buffering writes.
public final class JSONLinesWriter {
    private let handle: FileHandle
    private var pending = Data()
    private let encoder: JSONEncoder

    public init(path: String) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        try handle.truncate(atOffset: 0)
        self.handle = handle
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    public func write<Value: Encodable>(_ value: Value) throws {
        pending.append(try encoder.encode(value))
        pending.append(0x0A)
        if pending.count >= 1 << 20 { try flush() }
    }

    public func flush() throws {
        guard !pending.isEmpty else { return }
        try handle.write(contentsOf: pending)
        pending.removeAll(keepingCapacity: true)
    }

    /// Flushes, syncs to disk and closes.
    public func close() throws {
        try flush()
        try handle.synchronize()
        try handle.close()
    }
}
