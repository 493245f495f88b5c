import ActorCluster
import Distributed
import Foundation
import Wire

/// A test actor that answers with who called it (``ClusterSystem/caller``): the caller's member
/// in `nodeName` and the whole description in `payload`.
distributed actor CallerProbeActor: ClusterCallable {
    typealias ActorSystem = ClusterSystem

    static let wireMethods: [WireMethod<CallerProbeActor>] = [
        .init("CallerProbe.who") { try await $0.who($1.next()) },
    ]

    distributed func who(_ request: Selfimprove_V1_Empty) -> Selfimprove_V1_EchoReply {
        var reply = Selfimprove_V1_EchoReply()
        reply.nodeName = ClusterSystem.caller?.member ?? ""
        reply.payload = Data((ClusterSystem.caller?.description ?? "local").utf8)
        return reply
    }
}
