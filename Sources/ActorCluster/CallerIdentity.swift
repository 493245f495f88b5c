/// Who made the distributed call now running on this node, as far as the transport can tell.
/// Read it inside a distributed method with ``ClusterSystem/caller``.
///
/// How much it proves depends on the connection:
/// - **Accepted** (the caller connected to our ROUTER): with CURVE, ``member`` is the member
///   whose key the connection was made with, which the caller cannot forge without that key.
///   ``endpoint`` is whatever its handshake claimed (plain text: nothing is proven).
/// - **Dialled** (the call came back over a connection we opened): the caller is whoever
///   answers at ``endpoint``, an address we chose; with CURVE it also holds the cluster's
///   server key.
public struct CallerIdentity: Sendable, Hashable, CustomStringConvertible {
    /// Which side opened the connection the call came over.
    public enum Connection: Sendable, Hashable {
        /// The caller connected to us.
        case accepted
        /// We connected to the caller.
        case dialled
    }

    public var connection: Connection
    /// The caller's endpoint: claimed by its handshake (accepted), or the one we dialled; nil
    /// when an accepted connection has not handshaken.
    public var endpoint: String?
    /// The member name the caller's CURVE key is registered under (accepted connections with
    /// CURVE only); nil otherwise.
    public var member: String?

    public init(connection: Connection, endpoint: String?, member: String?) {
        self.connection = connection
        self.endpoint = endpoint
        self.member = member
    }

    public var description: String {
        var parts = [connection == .dialled ? "dialled" : "accepted", endpoint ?? "no handshake"]
        if let member { parts.append("member \(member)") }
        return parts.joined(separator: ", ")
    }
}

extension ClusterSystem {
    /// The caller of the distributed method running in this task, when a peer called it; nil
    /// for local calls.
    public static var caller: CallerIdentity? { currentCaller }
}
