import Distributed
import SwiftProtobuf
import Synchronization
import Wire

/// Captures what a locally executed distributed method produced, as the envelope to send back.
///
/// Required by `DistributedActorSystem` (for `executeDistributedTarget`); ``ClusterSystem``
/// executes calls through ``WireMethod`` handlers and builds replies itself.
public final class ClusterResultHandler: DistributedTargetInvocationResultHandler {
    public typealias SerializationRequirement = any SwiftProtobuf.Message

    private let callID: UInt64
    private let outcome = Mutex<WireEnvelope?>(nil)

    init(callID: UInt64) {
        self.callID = callID
    }

    public func onReturn<Success: SwiftProtobuf.Message>(value: Success) async throws {
        var envelope = WireEnvelope()
        do {
            var reply = WireReply()
            reply.callID = callID
            reply.result = try value.serializedData()
            envelope.reply = reply
        } catch {
            envelope.error = .make(callID: callID, code: RemoteCallError.remoteThrew, typeName: "\(type(of: error))", message: "result did not serialize: \(error)")
        }
        outcome.withLock { $0 = envelope }
    }

    public func onReturnVoid() async throws {
        var reply = WireReply()
        reply.callID = callID
        var envelope = WireEnvelope()
        envelope.reply = reply
        outcome.withLock { $0 = envelope }
    }

    public func onThrow<Err: Error>(error: Err) async throws {
        var envelope = WireEnvelope()
        if let remote = error as? RemoteCallError {
            envelope.error = .make(callID: callID, code: remote.code, typeName: remote.typeName, message: remote.message)
        } else {
            envelope.error = .make(callID: callID, code: RemoteCallError.remoteThrew, typeName: String(reflecting: type(of: error as any Error)), message: "\(error)")
        }
        outcome.withLock { $0 = envelope }
    }

    /// The envelope to send back; nil if the method produced nothing (should not happen).
    func take() -> WireEnvelope? {
        outcome.withLock { value in
            let result = value
            value = nil
            return result
        }
    }
}

extension WireErrorReply {
    static func make(callID: UInt64, code: String, typeName: String = "", message: String) -> WireErrorReply {
        var error = WireErrorReply()
        error.callID = callID
        error.code = code
        error.typeName = typeName
        error.message = message
        return error
    }
}
