

/// An error raised by the ``ClusterSystem`` itself (as opposed to one thrown by a remote
/// method, see ``RemoteCallError``).
public struct ClusterError: Error, Sendable, CustomStringConvertible {
    /// What went wrong; extensible.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The call got no reply within its timeout.
        public static let timeout = Code("timeout")
        /// The node hosting the actor was declared down (dead, hung or cut off) or restarted.
        public static let nodeDown = Code("nodeDown")
        /// The node could not be reached or refused the handshake.
        public static let nodeUnreachable = Code("nodeUnreachable")
        /// The method has no stable wire name registered on this node.
        public static let unregisteredMethod = Code("unregisteredMethod")
        /// A local actor id that no live actor has.
        public static let actorNotFound = Code("actorNotFound")
        /// An encoded call or reply is larger than the configured maximum message size.
        public static let messageTooLarge = Code("messageTooLarge")
        /// A peer sent something that breaks the protocol.
        public static let protocolViolation = Code("protocolViolation")
        /// Arguments or a result could not be encoded or decoded.
        public static let serialization = Code("serialization")
        /// The system is shutting down.
        public static let shutDown = Code("shutDown")
        /// Bad configuration.
        public static let configuration = Code("configuration")
    }

    public var code: Code
    public var message: String
    public var cause: (any Error)?
    public var location: String

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil, fileID: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.cause = cause
        self.location = "\(fileID):\(line)"
    }

    public var description: String {
        var text = "ClusterError.\(code): \(message)"
        if let cause { text += " (cause: \(cause))" }
        return text
    }
}

/// An error carried back from the callee: the remote method threw, or the callee could not
/// deliver the call (unknown actor or method, undecodable arguments).
public struct RemoteCallError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Machine-readable reason, as on the wire: `remote.threw`, `actor.not_found`,
    /// `method.unknown`, `arguments.invalid`, `node.incarnation_mismatch`, `protocol.invalid`.
    public var code: String
    /// For `remote.threw`, the Swift type name of the error the method threw.
    public var typeName: String
    public var message: String

    public init(code: String, typeName: String, message: String) {
        self.code = code
        self.typeName = typeName
        self.message = message
    }

    public var description: String {
        typeName.isEmpty ? "RemoteCallError(\(code)): \(message)" : "RemoteCallError(\(code), \(typeName)): \(message)"
    }

    public static let remoteThrew = "remote.threw"
    public static let actorNotFound = "actor.not_found"
    public static let methodUnknown = "method.unknown"
    public static let argumentsInvalid = "arguments.invalid"
    public static let incarnationMismatch = "node.incarnation_mismatch"
    public static let protocolInvalid = "protocol.invalid"
}
