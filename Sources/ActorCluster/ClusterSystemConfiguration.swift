import ZeroMQ

/// Settings of one ``ClusterSystem`` node.
public struct ClusterSystemConfiguration: Sendable, Hashable {
    /// A name for logs (for example `sampler-1`).
    public var nodeName: String = "node"
    /// Labels on the system's metrics besides `node` (bounded ones, e.g. the node's role).
    public var metricLabels: [String: String] = [:]
    /// Where the node's ROUTER listens; `*` as the port picks a free one.
    public var bindEndpoint: String = "tcp://127.0.0.1:*"
    /// The endpoint peers should use, if different from the bound one (for example the host's
    /// routable address when binding `tcp://0.0.0.0:7000`).
    public var advertisedEndpoint: String? = nil
    /// How long a remote call waits for its reply unless overridden with
    /// ``ClusterSystem/withCallTimeout(_:_:)``.
    public var callTimeout: Duration = .seconds(30)
    /// How often each side of an association sends an application heartbeat.
    public var heartbeatInterval: Duration = .milliseconds(250)
    /// Silence after which a peer is declared down, its calls failed and its actors reported
    /// gone. With the default tick this bounds detection at about 2.1 s (requirement: 3 s).
    public var failureTimeout: Duration = .seconds(2)
    /// How long a node that went down (or never answered) is still dialled before its
    /// connection is closed and the node forgotten. Endpoints passed to
    /// ``ClusterSystem/join(_:timeout:)`` are dialled forever, so a restarted seed is found again.
    public var forgetDownNodesAfter: Duration = .seconds(60)
    /// Granularity of call timeouts and failure detection.
    public var tick: Duration = .milliseconds(50)
    /// Largest message this node sends or accepts (`ZMQ_MAXMSGSIZE` on its sockets).
    public var maxMessageSize: Int = 64 << 20
    /// Socket options for every socket of the node (high-water marks, ZMTP heartbeats, CURVE).
    public var socketOptions: ZMQSocketOptions = .default
    /// CURVE authentication and encryption on every socket of the node; nil for plain text.
    public var security: Security? = nil

    /// CURVE settings of a cluster. Every node's ROUTER serves with the cluster's server key
    /// pair, so a node dialling any endpoint knows the key to expect; every node connects with
    /// its own key pair, which the others' ZAP handlers check against their allow-lists.
    public struct Security: Sendable, Hashable {
        /// The servers' key pair (every node holds it).
        public var serverKeyPair: ZMQCurveKeyPair
        /// This node's own key pair, presented when it connects.
        public var nodeKeyPair: ZMQCurveKeyPair
        /// Z85 public keys of the nodes this node admits.
        public var allowedPublicKeys: Set<String>
        /// The ZAP domain (`ZMQ_ZAP_DOMAIN`, enforced).
        public var domain: String
        /// The cluster's members by public key: a connection made with a member's key is that
        /// member (``CallerIdentity/member``), whatever its handshake claims. Their keys are
        /// admitted too.
        public var members: [String: Member]

        /// A node of the cluster as its key identifies it.
        public struct Member: Sendable, Hashable {
            /// The member's name (a node of the config).
            public var name: String
            /// The receptionist keys it may register actors under; nil for any. Entries under
            /// other keys are refused and logged, so a member cannot pose as another role.
            public var receptionKeys: Set<String>?

            public init(name: String, receptionKeys: Set<String>? = nil) {
                self.name = name
                self.receptionKeys = receptionKeys
            }
        }

        public init(serverKeyPair: ZMQCurveKeyPair, nodeKeyPair: ZMQCurveKeyPair, allowedPublicKeys: Set<String> = [],
                    members: [String: Member] = [:], domain: String = "selfimprove")
        {
            self.serverKeyPair = serverKeyPair
            self.nodeKeyPair = nodeKeyPair
            self.allowedPublicKeys = allowedPublicKeys
            self.members = members
            self.domain = domain
        }
    }

    /// Where incoming calls run. See ``CallExecution``.
    public var callExecution: CallExecution = .eventLoop

    /// Where a node runs the distributed methods its peers call.
    public enum CallExecution: Sendable, Hashable {
        /// On the node's I/O thread (a task executor preference), which saves two thread hops
        /// per call. Right for methods that only await (network, other actors) or compute for
        /// microseconds; a method that computes for long stalls the node's sockets, heartbeats
        /// included, while it runs.
        case eventLoop
        /// On Swift's global concurrent pool: one hop more each way, but long computations
        /// cannot delay the node's I/O.
        case globalPool
    }

    /// Event loop buffering limits.
    public var eventLoop: ZMQEventLoop.Configuration = .default

    /// Incoming calls one peer may have running on this node at once; more are answered at
    /// once with `remote.threw`, type name `Overloaded` (as the C node does), so a peer that
    /// floods calls cannot start unbounded work.
    public var maxCallsInFlightPerPeer: Int = 1024
    /// Incoming calls all peers together may have running at once.
    public var maxCallsInFlight: Int = 8192
    /// Bytes of arguments all incoming calls running at once may hold: a call that would pass
    /// it is refused as `Overloaded` (one call is always taken), so peers cannot make the node
    /// hold `maxCallsInFlight` calls of `maxMessageSize` each.
    public var maxCallBytesInFlight: Int = 1 << 30

    public init() {}

    public static var `default`: ClusterSystemConfiguration { ClusterSystemConfiguration() }

    /// Checks the settings before anything starts.
    /// - Throws: ``ClusterError`` with code `.configuration` naming the bad setting.
    public func validate() throws(ClusterError) {
        guard bindEndpoint.contains("://") else {
            throw ClusterError(.configuration, "bindEndpoint '\(bindEndpoint)' is not a ZeroMQ endpoint (expected e.g. tcp://127.0.0.1:*)")
        }
        guard callTimeout > .zero else { throw ClusterError(.configuration, "callTimeout must be positive") }
        guard heartbeatInterval > .zero else { throw ClusterError(.configuration, "heartbeatInterval must be positive") }
        guard failureTimeout > heartbeatInterval * 2 else {
            throw ClusterError(.configuration, "failureTimeout (\(failureTimeout)) must exceed two heartbeat intervals (\(heartbeatInterval * 2))")
        }
        guard tick > .zero, tick <= heartbeatInterval else {
            throw ClusterError(.configuration, "tick must be positive and at most heartbeatInterval")
        }
        guard maxMessageSize >= 1024 else { throw ClusterError(.configuration, "maxMessageSize must be at least 1024 bytes") }
    }
}
