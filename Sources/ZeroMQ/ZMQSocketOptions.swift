/// The options every socket of this project is made with.
///
/// Defaults follow the transport rules of the architecture: `LINGER=0` so closing never
/// waits, explicit high-water marks, a maximum inbound message size, and ZMTP heartbeats so
/// dead TCP connections are noticed by libzmq itself.
public struct ZMQSocketOptions: Sendable, Hashable {
    /// Outbound queue limit per peer, in messages (`ZMQ_SNDHWM`).
    public var sendHighWaterMark: Int32 = 10_000
    /// Inbound queue limit per peer, in messages (`ZMQ_RCVHWM`).
    public var receiveHighWaterMark: Int32 = 10_000
    /// Largest inbound frame in bytes (`ZMQ_MAXMSGSIZE`); a peer sending more is disconnected.
    public var maxMessageSize: Int64 = 64 << 20
    /// ZMTP PING interval (`ZMQ_HEARTBEAT_IVL`); zero disables ZMTP heartbeats.
    public var zmtpHeartbeatInterval: Duration = .milliseconds(1000)
    /// How long to wait for a ZMTP PONG before closing the connection (`ZMQ_HEARTBEAT_TIMEOUT`).
    public var zmtpHeartbeatTimeout: Duration = .milliseconds(3000)
    /// Reconnect interval for connecting sockets (`ZMQ_RECONNECT_IVL`).
    public var reconnectInterval: Duration = .milliseconds(100)
    /// Upper bound of the exponential reconnect back-off (`ZMQ_RECONNECT_IVL_MAX`).
    public var reconnectIntervalMax: Duration = .milliseconds(1000)
    /// The routing id a DEALER announces to the ROUTER it connects to (`ZMQ_ROUTING_ID`).
    public var routingID: [UInt8]? = nil
    /// CURVE settings; nil means plain text.
    public var curve: Curve? = nil
    /// An `inproc://` endpoint where libzmq reports this socket's failed handshakes (a peer
    /// with no key or a refused one), for ``ZMQConnectionGuard`` to log; nil for none.
    public var handshakeMonitorEndpoint: String? = nil

    /// CURVE encryption and authentication for one socket.
    public struct Curve: Sendable, Hashable {
        /// This socket's own key pair.
        public var keyPair: ZMQCurveKeyPair
        /// For a connecting socket, the public key of the server it connects to; nil on a server.
        public var serverPublicKey: String?
        /// On a server: the ZAP domain whose handler must approve every client
        /// (`ZMQ_ZAP_DOMAIN` with `ZMQ_ZAP_ENFORCE_DOMAIN`); nil admits any client key.
        public var zapDomain: String?

        public init(keyPair: ZMQCurveKeyPair, serverPublicKey: String? = nil, zapDomain: String? = nil) {
            self.keyPair = keyPair
            self.serverPublicKey = serverPublicKey
            self.zapDomain = zapDomain
        }
    }

    public init() {}

    public static var `default`: ZMQSocketOptions { ZMQSocketOptions() }
}

extension Duration {
    /// Whole milliseconds, clamped to `Int32` for socket options.
    var zmqMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: milliseconds)
    }
}
