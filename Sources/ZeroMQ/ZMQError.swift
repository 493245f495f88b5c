import CZeroMQ

/// An error from libzmq or from this wrapper, with the errno and where it happened.
///
/// A struct with an extensible ``Code`` (not an enum) so new cases do not break callers.
public struct ZMQError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The operation would block (`EAGAIN`): a high-water mark is reached.
        public static let wouldBlock = Code("wouldBlock")
        /// The context or event loop was terminated.
        public static let terminated = Code("terminated")
        /// A ROUTER has no peer with the routing id (`EHOSTUNREACH`).
        public static let hostUnreachable = Code("hostUnreachable")
        /// An endpoint string could not be used (bad syntax, address in use, ...).
        public static let badEndpoint = Code("badEndpoint")
        /// A socket option could not be set.
        public static let badOption = Code("badOption")
        /// A message is larger than the configured maximum.
        public static let messageTooLarge = Code("messageTooLarge")
        /// The socket or handle is not known (already closed).
        public static let unknownSocket = Code("unknownSocket")
        /// Anything else libzmq reported.
        public static let other = Code("other")
    }

    public var code: Code
    public var message: String
    /// The `errno` reported by libzmq, if any.
    public var errno: Int32?
    public var location: String

    public init(_ code: Code, _ message: String, errno: Int32? = nil, fileID: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.errno = errno
        self.location = "\(fileID):\(line)"
    }

    /// Builds an error from the calling thread's `zmq_errno()`.
    static func last(_ what: String, fileID: String = #fileID, line: Int = #line) -> ZMQError {
        let number = zmq_errno()
        let text = String(cString: zmq_strerror(number))
        let code: Code
        switch number {
        case EAGAIN: code = .wouldBlock
        case ETERM: code = .terminated
        case EHOSTUNREACH: code = .hostUnreachable
        case EADDRINUSE, EADDRNOTAVAIL, EPROTONOSUPPORT, ENOCOMPATPROTO, ENODEV: code = .badEndpoint
        case ENOTSOCK: code = .unknownSocket
        default: code = .other
        }
        return ZMQError(code, "\(what) failed: \(text) (errno \(number))", errno: number, fileID: fileID, line: line)
    }

    public var description: String { "ZMQError.\(code): \(message) [\(location)]" }
}
