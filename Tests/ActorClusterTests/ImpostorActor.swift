import ActorCluster
import Distributed
import Wire

/// A test actor whose wire names claim to be Diagnostics methods with other shapes, to send
/// well-formed calls that the callee must refuse: an unknown method, and wrong argument counts.
distributed actor ImpostorActor: ClusterCallable {
    typealias ActorSystem = ClusterSystem

    static let wireMethods: [WireMethod<ImpostorActor>] = [
        .init("Diagnostics.missing") { try await $0.missing($1.next()) },
        .init("Diagnostics.echo") { try await $0.echoWithTwoArguments($1.next(), $1.next()) },
    ]

    distributed func missing(_ request: Selfimprove_V1_EchoRequest) -> Selfimprove_V1_EchoReply {
        Selfimprove_V1_EchoReply()
    }

    distributed func echoWithTwoArguments(_ first: Selfimprove_V1_EchoRequest, _ second: Selfimprove_V1_EchoRequest) -> Selfimprove_V1_EchoReply {
        Selfimprove_V1_EchoReply()
    }
}

/// An actor type nobody registers: calling it must fail on the caller's side.
distributed actor UnregisteredActor {
    typealias ActorSystem = ClusterSystem

    distributed func ping(_ request: Selfimprove_V1_Empty) -> Selfimprove_V1_Empty { request }
}
