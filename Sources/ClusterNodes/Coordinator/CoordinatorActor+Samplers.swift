import ActorCluster
import Backends
import CoreMetrics
import Distributed
import Foundation
import Logging
import Metrics
import SelfImproveCore
import Wire

/// The samplers' side of a coordinator: work requests, paths and failures, each checked against the
/// caller.
extension CoordinatorActor {
    /// Takes the paths of the leases the sampler finished, then leases it up to `credits`
    /// requests of work; an empty grant says when to ask again, and a finished one that the run
    /// is over.
    /// - Throws: `Unauthorized` when, with CURVE, the caller's key is not a sampler's or the
    ///   sampler name belongs to another key (nothing of the request is taken).
    public distributed func requestWork(_ request: Selfimprove_V1_WorkRequest) throws -> Selfimprove_V1_WorkGrant {
        try requireSampler(request.sampler, claims: request.submissions.map(\.sampler), method: "Coordinator.requestWork")
        if !request.node.isEmpty, samplerNodes[request.node] == nil {
            samplerNodes[request.node] = request.sampler
            log(.notice, "sampler joined", ["sampler": "\(request.sampler)", "node": "\(request.node)"])
        }
        for submission in request.submissions { take(submission) }
        return grant(to: request.sampler, pool: request.pool, credits: request.credits)
    }

    /// Up to `credits` leases for a sampler (empty: when to ask again; finished: the run is over).
    private func grant(to sampler: String, pool: String, credits: UInt32) -> Selfimprove_V1_WorkGrant {
        var grant = Selfimprove_V1_WorkGrant()
        guard outcome == nil else {
            grant.finished = true
            samplersTold.insert(sampler)
            return grant
        }
        refill()
        let leases = ledger.lease(to: sampler, pool: pool, credits: Int(min(credits, 4096)), now: .now)
        progress.leasesGranted += leases.count
        if progress.firstLease == nil, !leases.isEmpty { progress.firstLease = .now }
        grant.sampling = sampling
        grant.leases = leases.map { lease in
            var wire = Selfimprove_V1_WorkLease()
            wire.leaseID = leaseIDs.encode(lease.id.rawValue)
            wire.questionID = lease.question.id
            wire.prompt = lease.work.prompt
            if !lease.work.usesRunSettings { wire.sampling = settings(of: lease.work) }
            wire.indices = lease.indices.map { UInt32($0) }
            wire.deadlineMs = UInt32(clamping: Int64(config.coordinator.leaseTimeout.seconds * 1000))
            return wire
        }
        if leases.isEmpty { grant.retryAfterMs = 20 }
        return grant
    }

    /// Takes a lease's paths. Late or duplicate paths are dropped (counted, never doubled).
    private func take(_ submission: Selfimprove_V1_PathSubmission) {
        let paths = submission.paths.map { path in
            SampledPath(text: path.text, completionTokens: Int(path.completionTokens), finishReason: path.finishReason,
                        logProbability: path.hasLogProbability ? path.logProbability : nil)
        }
        let result = ledger.complete(WorkLedger.LeaseID(rawValue: leaseIDs.decode(submission.leaseID)), by: submission.sampler, paths: paths,
                                     modelVersion: submission.modelVersion)
        if let holder = result.heldBy {
            log(.warning, "paths for a lease granted to another sampler refused", [
                "lease": "\(submission.leaseID)", "sampler": "\(submission.sampler)", "granted_to": "\(holder)",
            ])
        }
        if let deadline = result.leaseDeadline {
            metrics.leaseDuration.record(duration: max(.zero, ContinuousClock.now - (deadline - config.coordinator.leaseTimeout)))
        }
        let accepted = max(0, paths.count - result.dropped)
        progress.pathsReceived += accepted
        if accepted > 0 { progress.lastPath = .now }
        progress.pathsDropped += result.dropped
        progress.completionTokens += submission.paths.reduce(0) { $0 + Int($1.completionTokens) }
        if result.dropped > 0 {
            log(.info, "late or duplicate paths dropped", ["lease": "\(submission.leaseID)", "sampler": "\(submission.sampler)", "paths": "\(result.dropped)"])
        }
        for group in result.completed { unitDone(group) }
    }

    /// A sampler could not serve a lease: its paths go back to the queue (or are given up
    /// after `max_attempts`).
    /// - Throws: `Unauthorized` as ``requestWork(_:)`` does.
    public distributed func reportFailure(_ failure: Selfimprove_V1_LeaseFailure) throws -> Selfimprove_V1_SubmissionReceipt {
        try requireSampler(failure.sampler, claims: [], method: "Coordinator.reportFailure")
        progress.leasesFailed += 1
        log(.warning, "backend error; lease re-queued", ["lease": "\(failure.leaseID)", "sampler": "\(failure.sampler)", "error": "\(failure.reason)"])
        let result = ledger.fail(WorkLedger.LeaseID(rawValue: leaseIDs.decode(failure.leaseID)), by: failure.sampler)
        if let holder = result.heldBy {
            log(.warning, "failure of a lease granted to another sampler refused", [
                "lease": "\(failure.leaseID)", "sampler": "\(failure.sampler)", "granted_to": "\(holder)",
            ])
        }
        for group in result.completed { unitDone(group) }
        return Selfimprove_V1_SubmissionReceipt()
    }

    /// Throws, and logs, unless the caller may act as sampler `name` (and as every sampler
    /// its submissions name).
    private func requireSampler(_ name: String, claims: [String], method: String) throws(RemoteCallError) {
        for claimed in Set([name] + claims) {
            guard let reason = callers.refusalUnlessSampler(ClusterSystem.caller, claiming: claimed, names: samplerNames) else { continue }
            log(.warning, "call refused: the caller may not act as this sampler", ["method": "\(method)", "sampler": "\(claimed)", "reason": "\(reason)"])
            throw CallerChecks.unauthorized(reason)
        }
    }

    /// The run's sampling settings with what a method's request sets for itself.
    private func settings(of work: SampleWork) -> Selfimprove_V1_SamplingSettings {
        var settings = sampling
        if let temperature = work.temperature { settings.temperature = temperature }
        if let maxTokens = work.maxTokens { settings.maxTokens = UInt32(clamping: maxTokens) }
        if let stop = work.stop { settings.stop = stop }
        if let seed = work.seed { settings.seed = sampling.seed &+ seed &* 0x9E37_79B9_7F4A_7C15 }
        return settings
    }
}
