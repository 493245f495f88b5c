import Foundation

/// Checks that a file is a whole GGUF model before a server is asked to load it: the header,
/// every metadata entry and tensor description, and that every tensor's data lies inside the
/// file. A training job that was killed while writing, or a disk that filled, leaves a file
/// that fails here with a reason, instead of a server that cannot start.
public enum GGUFCheck {
    /// What was found wrong, with the byte offset where it was found.
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// What a whole file holds.
    public struct Summary: Sendable, Equatable {
        public var version: UInt32
        public var tensors: Int
        public var metadataEntries: Int
        /// The bytes the tensors need (from the data section's start to the last tensor's end).
        public var dataEnd: UInt64
    }

    /// Checks the file at `path` (memory-mapped, nothing copied).
    public static func check(path: String) throws -> Summary {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw Failure(description: "\(path) cannot be read: \(error.localizedDescription)")
        }
        do {
            return try check(data)
        } catch let failure as Failure {
            throw Failure(description: "\(path) is not a whole GGUF model: \(failure.description)")
        }
    }

    /// Checks the bytes of a GGUF file.
    public static func check(_ bytes: Data) throws -> Summary {
        var reader = Reader(bytes: bytes)
        guard try reader.bytes(4) == Data("GGUF".utf8) else { throw Failure(description: "no GGUF magic at offset 0") }
        let version = try reader.u32()
        guard version == 2 || version == 3 else { throw Failure(description: "unsupported GGUF version \(version)") }
        let tensorCount = try reader.u64(), entryCount = try reader.u64()
        // Every entry and tensor takes at least 8 bytes: a larger count is a damaged header.
        guard tensorCount > 0, tensorCount <= UInt64(bytes.count / 8), entryCount <= UInt64(bytes.count / 8) else {
            throw Failure(description: "implausible counts (\(tensorCount) tensors, \(entryCount) metadata entries) for \(bytes.count) bytes")
        }
        var alignment: UInt64 = 32
        for _ in 0..<entryCount {
            let key = try reader.string()
            let type = try reader.u32()
            if key == "general.alignment", type == ValueType.u32 {
                alignment = UInt64(try reader.u32())
                guard alignment > 0, alignment & (alignment - 1) == 0 else { throw Failure(description: "general.alignment \(alignment) is not a power of two") }
            } else {
                try reader.skipValue(type: type)
            }
        }
        var tensorEnds: [(name: String, end: UInt64)] = []
        for _ in 0..<tensorCount {
            let name = try reader.string()
            let dimensions = try reader.u32()
            guard dimensions >= 1, dimensions <= 8 else { throw Failure(description: "tensor \(name) has \(dimensions) dimensions") }
            var elements: UInt64 = 1
            for _ in 0..<dimensions {
                let (product, overflow) = elements.multipliedReportingOverflow(by: try reader.u64())
                guard !overflow else { throw Failure(description: "tensor \(name) has an impossible shape") }
                elements = product
            }
            let type = try reader.u32()
            let offset = try reader.u64()
            guard offset % alignment == 0 else { throw Failure(description: "tensor \(name)'s offset \(offset) is not aligned to \(alignment)") }
            // A type this check does not know still has its data start inside the file.
            let size = TensorType.size(type: type, elements: elements) ?? 1
            tensorEnds.append((name, offset + size))
        }
        let dataStart = (UInt64(reader.offset) + alignment - 1) / alignment * alignment
        let dataEnd = dataStart + (tensorEnds.map(\.end).max() ?? 0)
        if let short = tensorEnds.first(where: { dataStart + $0.end > UInt64(bytes.count) }) {
            throw Failure(description: "the file ends at byte \(bytes.count) but tensor \(short.name) needs \(dataStart + short.end) (truncated?)")
        }
        return Summary(version: version, tensors: Int(tensorCount), metadataEntries: Int(entryCount), dataEnd: dataEnd)
    }

    enum ValueType {
        static let u32: UInt32 = 4
        static let string: UInt32 = 8
        static let array: UInt32 = 9
        /// Bytes of the fixed-size value types, by GGUF type number.
        static let sizes: [UInt32: Int] = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8]
    }

    /// Bytes per block and elements per block of the ggml types a converter writes.
    enum TensorType {
        static let blocks: [UInt32: (elements: UInt64, bytes: UInt64)] = [
            0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
            10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
            24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 30: (1, 2),
        ]

        static func size(type: UInt32, elements: UInt64) -> UInt64? {
            guard let block = blocks[type] else { return nil }
            return (elements + block.elements - 1) / block.elements * block.bytes
        }
    }

    /// Little-endian reads that fail, naming the offset, instead of running past the end.
    struct Reader {
        let bytes: Data
        var offset = 0

        mutating func bytes(_ count: Int) throws -> Data {
            guard count >= 0, count <= bytes.count - offset else {
                throw Failure(description: "the file ends at byte \(bytes.count), inside the header (reading \(count) bytes at \(offset); truncated?)")
            }
            let start = bytes.startIndex + offset
            offset += count
            return bytes[start..<start + count]
        }

        mutating func u32() throws -> UInt32 { try bytes(4).reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        mutating func u64() throws -> UInt64 { try bytes(8).reversed().reduce(0) { $0 << 8 | UInt64($1) } }

        mutating func string() throws -> String {
            let length = try u64()
            guard length <= UInt64(bytes.count - offset) else { throw Failure(description: "a string of \(length) bytes at offset \(offset) runs past the end of the file (truncated?)") }
            return String(decoding: try bytes(Int(length)), as: UTF8.self)
        }

        mutating func skipValue(type: UInt32) throws {
            if let size = ValueType.sizes[type] {
                _ = try bytes(size)
            } else if type == ValueType.string {
                _ = try string()
            } else if type == ValueType.array {
                let elementType = try u32(), count = try u64()
                if let size = ValueType.sizes[elementType] {
                    let (total, overflow) = count.multipliedReportingOverflow(by: UInt64(size))
                    guard !overflow, total <= UInt64(bytes.count - offset) else { throw Failure(description: "an array of \(count) values at offset \(offset) runs past the end of the file (truncated?)") }
                    _ = try bytes(Int(total))
                } else {
                    guard count <= UInt64(bytes.count - offset) / 8 else { throw Failure(description: "an array of \(count) values at offset \(offset) runs past the end of the file (truncated?)") }
                    for _ in 0..<count { try skipValue(type: elementType) }
                }
            } else {
                throw Failure(description: "unknown metadata value type \(type) at offset \(offset - 4)")
            }
        }
    }
}
