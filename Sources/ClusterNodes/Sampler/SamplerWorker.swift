import ActorCluster
import Backends
import CoreMetrics
import Foundation
import Logging
import Metrics
import SelfImproveCore
import Synchronization
import Wire

/// Pulls leases from the coordinator with credits (its free capacity), draws each lease's paths
/// from the backend, and hands them in; a backend failure is reported so the lease goes
/// elsewhere at once instead of waiting for its deadline.
///
/// One call to the coordinator in flight at a time: each `requestWork` carries the paths of
/// every lease finished since the last one and asks for as many leases as there are free
/// slots. A slow backend gets one call per lease, as soon as the lease is done; a fast one gets
/// its paths batched by itself, so the cluster's message rate does not grow with its speed.
///
/// Capacity is requests in flight: a fast backend asks more often, a slow one less, and a hung
/// one stops asking (its leases expire on the coordinator).
public struct SamplerWorker: Sendable {
    public let name: String
    /// The sampler's pool (its `samplers` entry's name).
    public let pool: String
    public let capacity: Int
    public let backend: any ModelBackend
    public let system: ClusterSystem
    public let counters: SamplerCounters
    public let logger: Logger
    /// Prometheus metrics (no-ops unless the process exports them).
    private let metrics: SamplerMetrics

    public init(name: String, pool: String = "", capacity: Int, backend: any ModelBackend, system: ClusterSystem, counters: SamplerCounters, logger: Logger) {
        self.name = name
        self.pool = pool
        self.capacity = capacity
        self.backend = backend
        self.system = system
        self.counters = counters
        self.logger = logger
        self.metrics = SamplerMetrics(node: name)
    }

    /// Why ``run()`` returned.
    public enum Ending: Sendable, Equatable {
        /// The coordinator said the run is over.
        case finished
        /// The task was cancelled (the node is stopping).
        case cancelled
        /// The backend failed in a way that trying again cannot mend (``BackendError/permanent``):
        /// the sampler stops instead of failing every lease it is given.
        case backendUnusable(String)
    }

    /// Works until the coordinator says the run is over, the task is cancelled, or the backend
    /// fails for good. A lost coordinator is waited for (it may be restarting).
    @discardableResult
    public func run() async -> Ending {
        let outbox = SamplerOutbox(capacity: capacity)
        let unusable = FirstReason()
        var ending = Ending.cancelled
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
                let (submissions, credits) = await outbox.next()
                if Task.isCancelled { break }
                if let reason = unusable.reason {
                    ending = .backendUnusable(reason)
                    break
                }
                var request = Selfimprove_V1_WorkRequest()
                request.sampler = name
                request.pool = pool
                request.credits = UInt32(credits)
                request.node = system.identity.description
                request.submissions = submissions
                let grant: Selfimprove_V1_WorkGrant
                do {
                    grant = try await coordinator!.requestWork(request)
                } catch {
                    // The paths it carried go with the next request (the call may have failed
                    // before they arrived). Ones the coordinator already took, or whose leases
                    // it no longer knows (it restarted), are dropped there as duplicates.
                    logger.debug("Asking for work failed", metadata: ["error": "\(error)", "submissions": "\(submissions.count)"])
                    await outbox.putBack(submissions)
                    coordinator = nil
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
                if grant.finished {
                    logger.info("The coordinator says the run is over")
                    ending = .finished
                    break
                }
                let received = ContinuousClock.now
                await outbox.take(grant.leases.count)
                for lease in grant.leases {
                    let target = coordinator!
                    group.addTask {
                        let submission = await serve(lease, sampling: lease.hasSampling ? lease.sampling : grant.sampling,
                                                     received: received, coordinator: target, unusable: unusable)
                        await outbox.finish(submission)
                    }
                }
                if grant.leases.isEmpty, submissions.isEmpty {
                    try? await Task.sleep(for: .milliseconds(Int(max(1, min(grant.retryAfterMs, 5000)))))
                }
            }
            group.cancelAll()
        }
        return ending
    }

    /// Draws one lease's paths; returns them for the next request (nil: the backend failed,
    /// which is reported at once).
    private func serve(_ lease: Selfimprove_V1_WorkLease, sampling: Selfimprove_V1_SamplingSettings,
                       received: ContinuousClock.Instant, coordinator: CoordinatorActor,
                       unusable: FirstReason) async -> Selfimprove_V1_PathSubmission?
    {
        counters.inFlight.add(1, ordering: .relaxed)
        metrics.leasesInFlight.increment()
        defer {
            counters.inFlight.subtract(1, ordering: .relaxed)
            metrics.leasesInFlight.decrement()
        }
        let started = ContinuousClock.now
        let request = SamplingRequest(
            prompt: lease.prompt, n: lease.indices.count, temperature: sampling.temperature, topP: sampling.topP,
            maxTokens: Int(sampling.maxTokens), stop: sampling.stop,
            seed: sampling.hasSeed ? sampling.seed &+ UInt64(lease.indices.first ?? 0) : nil)
        do {
            let response = try await backend.sample(request)
            metrics.requestDuration.record(duration: ContinuousClock.now - started)
            metrics.paths(response.paths.count, modelVersion: response.modelVersion)
            metrics.tokens.increment(by: response.paths.reduce(0) { $0 + $1.completionTokens })
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
            return submission
        } catch {
            // Stopping: the lease expires on the coordinator (or the run is over).
            if Task.isCancelled { return nil }
            counters.failures.add(1, ordering: .relaxed)
            metrics.requestDuration.record(duration: ContinuousClock.now - started)
            metrics.errors.increment()
            let message = (error as? BackendError)?.message ?? "\(error)"
            logger.warning("Backend error", metadata: ["lease": "\(lease.leaseID)", "error": "\(message)"])
            if let backendError = error as? BackendError, backendError.permanent {
                unusable.record(message)
            }
            var failure = Selfimprove_V1_LeaseFailure()
            failure.leaseID = lease.leaseID
            failure.sampler = name
            failure.reason = message
            do {
                _ = try await coordinator.reportFailure(failure)
            } catch {
                // The coordinator could not be reached: the lease expires there and goes elsewhere.
                logger.debug("Reporting a failed lease failed", metadata: ["lease": "\(lease.leaseID)", "error": "\(error)"])
            }
            return nil
        }
    }
}

/// The first reason recorded, shared by the tasks serving leases and the loop that asks for work.
private final class FirstReason: Sendable {
    private let value = Mutex<String?>(nil)

    var reason: String? { value.withLock { $0 } }

    func record(_ reason: String) {
        value.withLock { $0 = $0 ?? reason }
    }
}
