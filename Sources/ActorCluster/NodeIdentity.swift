import Wire

/// A node: the endpoint peers reach it at plus a random incarnation id drawn at start-up.
///
/// A process restarted on the same address draws a new incarnation, so it is a different node
/// and actors of the old one are never confused with the new one's.
public struct NodeIdentity: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Where peers connect, for example `tcp://127.0.0.1:7000`.
    public var endpoint: String
    /// Random, non-zero, fixed for the life of the process.
    public var incarnation: UInt64

    public init(endpoint: String, incarnation: UInt64) {
        self.endpoint = endpoint
        self.incarnation = incarnation
    }

    /// A fresh random incarnation id (never zero).
    public static func randomIncarnation() -> UInt64 {
        UInt64.random(in: 1 ... .max)
    }

    public var description: String { "\(endpoint)#\(String(incarnation, radix: 16))" }
}

extension NodeIdentity {
    init(wire: WireNodeIdentity) throws(ClusterError) {
        guard !wire.endpoint.isEmpty else { throw ClusterError(.protocolViolation, "NodeIdentity.endpoint is empty") }
        guard wire.incarnation != 0 else { throw ClusterError(.protocolViolation, "NodeIdentity.incarnation is zero") }
        self.init(endpoint: wire.endpoint, incarnation: wire.incarnation)
    }

    func toWire() -> WireNodeIdentity {
        var wire = WireNodeIdentity()
        wire.endpoint = endpoint
        wire.incarnation = incarnation
        return wire
    }
}
