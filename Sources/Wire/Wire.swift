import SwiftProtobuf

/// Short names for the generated wire types (see `Protos/`).
public typealias WireEnvelope = Selfimprove_V1_Envelope
public typealias WireNodeIdentity = Selfimprove_V1_NodeIdentity
public typealias WireActorIdentity = Selfimprove_V1_ActorIdentity
public typealias WireCall = Selfimprove_V1_Call
public typealias WireReply = Selfimprove_V1_Reply
public typealias WireErrorReply = Selfimprove_V1_ErrorReply
public typealias WireHandshake = Selfimprove_V1_Handshake
public typealias WireHeartbeat = Selfimprove_V1_Heartbeat
public typealias WireRegistration = Selfimprove_V1_Registration
public typealias WireReceptionistUpdate = Selfimprove_V1_ReceptionistUpdate

/// Framing constants shared by every peer.
///
/// A message on the wire is two ZeroMQ frames: `[protocol version (1 byte)][Envelope]`. On a
/// ROUTER socket libzmq adds the peer's routing id in front.
public enum WireFraming {
    /// The protocol version this build speaks, sent as the first frame of every message.
    public static let protocolVersion: UInt8 = 1
}
