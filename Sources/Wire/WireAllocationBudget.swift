import Foundation

/// Refuses a frame whose decoding would cost far more memory than its size, before it is
/// decoded.
///
/// A protobuf decoder allocates per element: a 64 MiB frame made of empty repeated messages
/// (two bytes each) decodes into 32 million allocations, gigabytes. This counts, without a
/// schema, the length-delimited fields of a serialized message at every depth where a field's
/// payload itself reads as a message: an upper bound on the sub-messages, strings and byte
/// fields a decoder would allocate. Real traffic (paths of text, records of a few dozen paths)
/// carries tens to thousands of bytes per such field; the limit allows one per 16 bytes.
public enum WireAllocationBudget {
    /// Fields every frame may carry whatever its size.
    public static let baseFields = 4096
    /// Bytes per counted field allowed beyond ``baseFields``.
    public static let bytesPerField = 16
    /// Nesting deepened into; deeper payloads are counted as one field each.
    public static let maxDepth = 12

    /// The most length-delimited fields a frame of `size` bytes may hold.
    public static func allowedFields(size: Int) -> Int { baseFields + size / bytesPerField }

    /// The length-delimited fields of `bytes` (an upper bound), counting stopped past `limit`.
    public static func countFields(_ bytes: some DataProtocol & ContiguousBytes, limit: Int) -> Int {
        bytes.withUnsafeBytes { raw in
            var scanner = Scanner(limit: limit)
            _ = scanner.scan(raw, depth: 0)
            return scanner.count
        }
    }

    /// nil when `bytes` may be decoded, else why not (for the log).
    public static func refusal(_ bytes: some DataProtocol & ContiguousBytes) -> String? {
        let allowed = allowedFields(size: bytes.count)
        let count = countFields(bytes, limit: allowed)
        guard count > allowed else { return nil }
        return "more than \(allowed) length-delimited fields in \(bytes.count) bytes: it would decode into far more memory than it takes; refused before decoding"
    }

    private struct Scanner {
        let limit: Int
        var count = 0

        init(limit: Int) { self.limit = limit }

        /// Reads `bytes` as a message, counting its length-delimited fields and those of every
        /// payload that reads as a message. Returns whether `bytes` is well-formed wire format.
        mutating func scan(_ bytes: UnsafeRawBufferPointer, depth: Int) -> Bool {
            var offset = 0
            while offset < bytes.count {
                guard count <= limit, let key = varint(bytes, &offset), key >> 3 != 0 else { return false }
                switch key & 7 {
                case 0:
                    guard varint(bytes, &offset) != nil else { return false }
                case 1:
                    guard bytes.count - offset >= 8 else { return false }
                    offset += 8
                case 5:
                    guard bytes.count - offset >= 4 else { return false }
                    offset += 4
                case 2:
                    guard let length = varint(bytes, &offset), length <= UInt64(bytes.count - offset) else { return false }
                    count += 1
                    let payload = UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + Int(length)])
                    if depth < WireAllocationBudget.maxDepth, !payload.isEmpty {
                        // A payload that is not a message (text, say) costs one field; what a
                        // failed read counted is an overcount, on the safe side.
                        _ = scan(payload, depth: depth + 1)
                    }
                    offset += Int(length)
                default:
                    return false   // groups (deprecated) and invalid wire types
                }
            }
            return true
        }

        private func varint(_ bytes: UnsafeRawBufferPointer, _ offset: inout Int) -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while offset < bytes.count, shift < 64 {
                let byte = bytes[offset]
                offset += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
    }
}
