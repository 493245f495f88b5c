import ActorCluster
import Distributed
import Foundation
import Wire

/// A test actor whose method blocks the thread it runs on for `sequence` milliseconds: served
/// with `callExecution: .eventLoop`, it stalls the node's I/O thread as a long computation would.
distributed actor BlockingActor: ClusterCallable {
    typealias ActorSystem = ClusterSystem

    static let wireMethods: [WireMethod<BlockingActor>] = [
        .init("Blocking.block") { try await $0.block($1.next()) },
    ]

    distributed func block(_ request: Selfimprove_V1_EchoRequest) -> Selfimprove_V1_EchoReply {
        Thread.sleep(forTimeInterval: Double(request.sequence) / 1000)
        var reply = Selfimprove_V1_EchoReply()
        reply.sequence = request.sequence
        return reply
    }
}
