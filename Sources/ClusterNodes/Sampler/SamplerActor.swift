import ActorCluster
import Backends
import Distributed
import Foundation
import Logging
import Synchronization
import Wire

/// Counters a sampler's worker updates and its actor reports.
public final class SamplerCounters: Sendable {
    let inFlight = Atomic<Int>(0)
    let paths = Atomic<UInt64>(0)
    let failures = Atomic<UInt64>(0)
    public init() {}
}

/// A sampler node's actor: it announces the sampler to the cluster (the coordinator counts
/// samplers by it) and reports its status. The work itself is pulled by ``SamplerWorker``.
public distributed actor SamplerActor: ClusterCallable {
    public typealias ActorSystem = ClusterSystem

    /// The key samplers check in under.
    public static let key = ReceptionKey<SamplerActor>("samplers")

    public static let wireMethods: [WireMethod<SamplerActor>] = [
        .init("Sampler.status") { actor, _ in try await actor.status() },
    ]

    private let name: String
    private let capacity: Int
    private let counters: SamplerCounters

    public init(name: String, capacity: Int, counters: SamplerCounters, actorSystem: ClusterSystem) {
        self.actorSystem = actorSystem
        self.name = name
        self.capacity = capacity
        self.counters = counters
    }

    /// Name, capacity, requests in flight, paths drawn and failed requests.
    public distributed func status() -> Selfimprove_V1_SamplerStatus {
        var status = Selfimprove_V1_SamplerStatus()
        status.sampler = name
        status.capacity = UInt32(capacity)
        status.inFlight = UInt32(max(0, counters.inFlight.load(ordering: .relaxed)))
        status.paths = counters.paths.load(ordering: .relaxed)
        status.failures = counters.failures.load(ordering: .relaxed)
        return status
    }
}
