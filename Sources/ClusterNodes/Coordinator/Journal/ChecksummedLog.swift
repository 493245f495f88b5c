import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An append-only file of checksummed entries: an 8-byte magic, then per entry a u32
/// little-endian length, a u32 little-endian CRC-32C of the payload, and the payload.
///
/// Opening reads every entry and stops at the first one that is short, over-long or fails
/// its checksum (a write torn by a crash, or corruption): the file is cut back to the end of
/// the last good entry and the cut is reported. Appends are buffered; ``flush()`` writes them,
/// ``sync()`` also makes them durable. ``rewrite(_:)`` replaces the whole file atomically
/// (compaction).
///
/// Not thread-safe: one owner.
final class ChecksummedLog {
    /// Why a log cannot be used.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Largest entry accepted; a length field above it is corruption.
    static let maxEntrySize = 256 << 20

    let url: URL
    let magic: [UInt8]
    /// Bytes in the file (including buffered appends).
    private(set) var size: Int
    private var descriptor: Int32
    private var buffer: [UInt8] = []

    /// Opens (creating if missing) the log at `url`, passing each good entry's payload to
    /// `visit` in order.
    /// - Returns: The log and, if the tail was cut, a sentence saying what was cut and why.
    /// - Throws: ``Failure`` if the file cannot be opened, is not such a log, or cannot be repaired.
    static func open(_ url: URL, magic: String, visit: ([UInt8]) throws -> Void) throws -> (ChecksummedLog, repair: String?) {
        let magicBytes = Array(magic.utf8)
        let existing = FileManager.default.fileExists(atPath: url.path)
        let data = existing ? try Data(contentsOf: url, options: .alwaysMapped) : Data()
        var goodEnd = 0
        var repair: String?
        if data.count < magicBytes.count {
            if !data.isEmpty { repair = "cut a torn header of \(data.count) bytes" }
        } else {
            guard Array(data.prefix(magicBytes.count)) == magicBytes else {
                throw Failure(description: "\(url.path) is not a journal (it does not start with \(magic))")
            }
            goodEnd = magicBytes.count
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                var offset = goodEnd
                while offset < raw.count {
                    guard raw.count - offset >= 8 else {
                        repair = "cut a torn entry header of \(raw.count - offset) bytes at offset \(offset)"
                        return
                    }
                    let length = Int(readLittleEndian(raw, at: offset))
                    let expected = readLittleEndian(raw, at: offset + 4)
                    guard length <= maxEntrySize else {
                        repair = "cut \(raw.count - offset) bytes from offset \(offset): entry length \(length) is impossible"
                        return
                    }
                    guard raw.count - offset - 8 >= length else {
                        repair = "cut a torn entry at offset \(offset) (\(raw.count - offset - 8) of \(length) bytes written)"
                        return
                    }
                    let payload = UnsafeRawBufferPointer(rebasing: raw[(offset + 8) ..< (offset + 8 + length)])
                    guard CRC32C.checksum(payload) == expected else {
                        repair = "cut \(raw.count - offset) bytes from offset \(offset): entry checksum does not match"
                        return
                    }
                    try visit(Array(payload))
                    offset += 8 + length
                    goodEnd = offset
                }
            }
        }
        let descriptor = Glibc.open(url.path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Failure(description: "cannot open \(url.path): \(String(cString: strerror(errno)))") }
        let log = ChecksummedLog(url: url, magic: magicBytes, descriptor: descriptor, size: goodEnd)
        if goodEnd == 0 {
            guard ftruncate(descriptor, 0) == 0 else { throw log.failure("truncate") }
            log.buffer = magicBytes
            log.size = magicBytes.count
            try log.sync()
        } else if goodEnd < data.count {
            guard ftruncate(descriptor, off_t(goodEnd)) == 0, fsync(descriptor) == 0 else { throw log.failure("cut the torn tail of") }
        }
        guard lseek(descriptor, off_t(log.size - log.buffer.count), SEEK_SET) >= 0 else { throw log.failure("seek in") }
        return (log, repair)
    }

    private init(url: URL, magic: [UInt8], descriptor: Int32, size: Int) {
        self.url = url
        self.magic = magic
        self.descriptor = descriptor
        self.size = size
    }

    deinit { close(descriptor) }

    /// Adds an entry (buffered: call ``flush()`` or ``sync()``).
    func append(_ payload: [UInt8]) {
        Self.frame(payload, into: &buffer)
        size += 8 + payload.count
    }

    /// Bytes appended but not yet written.
    var buffered: Int { buffer.count }

    /// Writes the buffered entries to the file (not yet durable).
    /// - Throws: ``Failure`` if the write fails; the entries stay buffered.
    func flush() throws {
        var written = 0
        while written < buffer.count {
            let result = buffer.withUnsafeBytes { raw in
                Glibc.write(descriptor, raw.baseAddress! + written, raw.count - written)
            }
            if result < 0 {
                if errno == EINTR { continue }
                buffer.removeFirst(written)
                throw failure("write to")
            }
            written += result
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes and makes durable every entry appended so far.
    func sync() throws {
        try flush()
        guard fsync(descriptor) == 0 else { throw failure("sync") }
    }

    /// Writes the buffered entries and returns a descriptor to `fsync` on another thread (the
    /// log must not be rewritten until that finishes).
    func flushForSync() throws -> Int32 {
        try flush()
        return descriptor
    }

    /// Replaces the file with one holding exactly `payloads`: written beside it, synced, and
    /// renamed over it, so a crash leaves either the old file or the new one.
    func rewrite(_ payloads: [[UInt8]]) throws {
        var bytes = magic
        for payload in payloads { Self.frame(payload, into: &bytes) }
        let temporary = url.appendingPathExtension("compacting")
        let fresh = Glibc.open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fresh >= 0 else { throw failure("create \(temporary.lastPathComponent) beside") }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { raw in Glibc.write(fresh, raw.baseAddress! + written, raw.count - written) }
            if result < 0 {
                if errno == EINTR { continue }
                close(fresh)
                throw failure("write the compacted copy of")
            }
            written += result
        }
        guard fsync(fresh) == 0, rename(temporary.path, url.path) == 0 else {
            close(fresh)
            throw failure("replace")
        }
        close(descriptor)
        descriptor = fresh
        buffer.removeAll(keepingCapacity: true)
        size = bytes.count
        guard lseek(descriptor, off_t(size), SEEK_SET) >= 0 else { throw failure("seek in") }
        let folder = Glibc.open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 {
            _ = fsync(folder)
            close(folder)
        }
    }

    private static func frame(_ payload: [UInt8], into bytes: inout [UInt8]) {
        let length = UInt32(payload.count), checksum = CRC32C.checksum(payload)
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: length >> UInt32(shift))) }
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: checksum >> UInt32(shift))) }
        bytes.append(contentsOf: payload)
    }

    private static func readLittleEndian(_ raw: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        UInt32(raw[offset]) | UInt32(raw[offset + 1]) << 8 | UInt32(raw[offset + 2]) << 16 | UInt32(raw[offset + 3]) << 24
    }

    private func failure(_ action: String) -> Failure {
        Failure(description: "cannot \(action) \(url.path): \(String(cString: strerror(errno)))")
    }
}
