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

/// Pulls leases from the coordinator with credits (its free capacity), draws each lease's paths
/// from the backend, and submits them; a backend failure is reported so the lease goes
/// elsewhere at once instead of waiting for its deadline.
///
/// Each submission asks for one lease back in its receipt, so a busy sampler makes one round
/// trip per lease; `requestWork` fills free slots at the start and after an empty receipt.
///
/// Capacity is requests in flight: a fast backend asks more often, a slow one less, and a hung
/// one stops asking (its leases expire on the coordinator).
public struct SamplerWorker: Sendable {
    public let name: String
    public let capacity: Int
    public let backend: any ModelBackend
    public let system: ClusterSystem
    public let counters: SamplerCounters
    public let logger: Logger

    public init(name: String, capacity: Int, backend: any ModelBackend, system: ClusterSystem, counters: SamplerCounters, logger: Logger) {
        self.name = name
        self.capacity = capacity
        self.backend = backend
        self.system = system
        self.counters = counters
        self.logger = logger
    }

    /// Works until the coordinator says the run is over (returns normally) or the task is
    /// cancelled. A lost coordinator is waited for (it may be restarting).
    public func run() async {
        let slots = CreditGate(capacity: capacity)
        var coordinator: CoordinatorActor?
        var lastWarning = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            while !Task.isCancelled {
                if coordinator == nil {
                    coordinator = system.receptionist.lookup(CoordinatorActor.key).first
                    if coordinator == nil {
                        if ContinuousClock.now - lastWarning > .seconds(10) {
                            logger.warning("No coordinator reachable; waiting for it")
                            lastWarning = .now
                        }
                        try? await Task.sleep(for: .milliseconds(100))
                        continue
                    }
                }
                let credits = await slots.waitForFree()
                if Task.isCancelled { break }
                var request = Selfimprove_V1_WorkRequest()
                request.sampler = name
                request.credits = UInt32(credits)
                request.node = system.identity.description
                let grant: Selfimprove_V1_WorkGrant
                do {
                    grant = try await coordinator!.requestWork(request)
                } catch {
                    logger.debug("Asking for work failed", metadata: ["error": "\(error)"])
                    coordinator = nil
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
                if grant.finished {
                    logger.info("The coordinator says the run is over")
                    break
                }
                if grant.leases.isEmpty {
                    try? await Task.sleep(for: .milliseconds(Int(max(1, min(grant.retryAfterMs, 5000)))))
                    continue
                }
                let received = ContinuousClock.now
                for lease in grant.leases {
                    await slots.take()
                    let target = coordinator!
                    group.addTask {
                        // The slot keeps serving the leases that come back with each receipt,
                        // and is given back when none does.
                        var work = [(lease, grant.sampling, received)]
                        while let (lease, sampling, received) = work.popLast(), !Task.isCancelled {
                            if let next = await serve(lease, sampling: sampling, received: received, coordinator: target) {
                                let now = ContinuousClock.now
                                work.append(contentsOf: next.leases.reversed().map { ($0, next.sampling, now) })
                            }
                        }
                        await slots.release()
                    }
                }
            }
            group.cancelAll()
        }
    }

    /// Serves one lease; returns the work that came back with the receipt (nil: none).
    private func serve(_ lease: Selfimprove_V1_WorkLease, sampling: Selfimprove_V1_SamplingSettings,
                       received: ContinuousClock.Instant, coordinator: CoordinatorActor) async -> Selfimprove_V1_WorkGrant?
    {
        counters.inFlight.add(1, ordering: .relaxed)
        defer { counters.inFlight.subtract(1, ordering: .relaxed) }
        let request = SamplingRequest(
            prompt: lease.prompt, n: lease.indices.count, temperature: sampling.temperature, topP: sampling.topP,
            maxTokens: Int(sampling.maxTokens), stop: sampling.stop,
            seed: sampling.hasSeed ? sampling.seed &+ UInt64(lease.indices.first ?? 0) : nil)
        do {
            let response = try await backend.sample(request)
            var submission = Selfimprove_V1_PathSubmission()
            submission.leaseID = lease.leaseID
            submission.sampler = name
            submission.modelVersion = response.modelVersion
            submission.promptTokens = UInt32(clamping: response.promptTokens)
            submission.paths = response.paths.map { path in
                var wire = Selfimprove_V1_GeneratedPath()
                wire.text = path.text
                wire.completionTokens = UInt32(clamping: path.completionTokens)
                wire.finishReason = path.finishReason
                if let logProbability = path.logProbability { wire.logProbability = logProbability }
                return wire
            }
            counters.paths.add(UInt64(response.paths.count), ordering: .relaxed)
            if ContinuousClock.now - received > .milliseconds(Int64(lease.deadlineMs)) {
                logger.info("Lease finished after its deadline; the coordinator may drop it", metadata: ["lease": "\(lease.leaseID)"])
            }
            submission.credits = 1
            let receipt = try await coordinator.submitPaths(submission)
            return receipt.hasGrant && !receipt.grant.leases.isEmpty ? receipt.grant : nil
        } catch let error as BackendError {
            counters.failures.add(1, ordering: .relaxed)
            logger.warning("Backend error", metadata: ["lease": "\(lease.leaseID)", "error": "\(error.message)"])
            var failure = Selfimprove_V1_LeaseFailure()
            failure.leaseID = lease.leaseID
            failure.sampler = name
            failure.reason = error.message
            _ = try? await coordinator.reportFailure(failure)
        } catch {
            // The coordinator could not be reached: the lease expires there and goes elsewhere.
            logger.debug("Submitting paths failed", metadata: ["lease": "\(lease.leaseID)", "error": "\(error)"])
        }
        return nil
    }
}

/// Counts a sampler's free request slots.
actor CreditGate {
    private let capacity: Int
    private var used = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(capacity: Int) { self.capacity = capacity }

    /// Waits until at least one slot is free; returns how many are.
    func waitForFree() async -> Int {
        while used >= capacity {
            await withCheckedContinuation { waiters.append($0) }
        }
        return capacity - used
    }

    func take() { used += 1 }

    func release() {
        used -= 1
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }
}
