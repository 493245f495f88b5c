import Foundation

/// Reads a file's complete lines in 1 MiB chunks, with the byte offset where each ends, so
/// that files of any size can be checked and cut back in constant memory.
enum LineScanner {
    /// Calls `body` with each complete line (without its newline) and the offset just past
    /// its newline, until `body` returns false.
    /// - Returns: The offset just past the last line `body` accepted (0 if none), and whether
    ///   the scan stopped at the end of the file's complete lines (so trailing bytes, if any,
    ///   are a torn last line).
    static func scan(_ handle: FileHandle, _ body: (Data, UInt64) throws -> Bool) throws -> (acceptedEnd: UInt64, reachedEnd: Bool) {
        try handle.seek(toOffset: 0)
        var buffer = Data()
        var bufferStart: UInt64 = 0
        var acceptedEnd: UInt64 = 0
        while true {
            guard let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty else { return (acceptedEnd, true) }
            buffer.append(chunk)
            var lineStart = buffer.startIndex
            while let newline = buffer[lineStart...].firstIndex(of: 0x0A) {
                let end = bufferStart + UInt64(newline - buffer.startIndex + 1)
                guard try body(Data(buffer[lineStart ..< newline]), end) else { return (acceptedEnd, false) }
                acceptedEnd = end
                lineStart = newline + 1
            }
            bufferStart += UInt64(lineStart - buffer.startIndex)
            buffer = Data(buffer[lineStart...])
        }
    }
}
