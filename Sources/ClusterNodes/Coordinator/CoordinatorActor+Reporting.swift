import ActorCluster
import Backends
import CoreMetrics
import Distributed
import Foundation
import Logging
import Metrics
import SelfImproveCore
import Wire

/// What a coordinator tells its operator: metrics, progress lines, stalls and back-pressure, the
/// summary and the output files.
extension CoordinatorActor {
    /// The counts the metrics' counters follow.
    static func metricCounts(_ progress: RunProgress, read: Int) -> CoordinatorMetrics.Counts {
        CoordinatorMetrics.Counts(
            read: read, voted: progress.voted, stored: progress.done, pathsReceived: progress.pathsReceived, pathsDropped: progress.pathsDropped,
            pathsGivenUp: progress.pathsGivenUp, tokens: progress.completionTokens, leasesGranted: progress.leasesGranted,
            leasesExpired: progress.leasesExpired, leasesFailed: progress.leasesFailed, samplersLost: progress.samplersLost,
            criticTexts: progress.criticTexts, searchSteps: progress.pathsByPurpose["expansion", default: 0],
            searchRollouts: progress.pathsByPurpose["rollout", default: 0])
    }

    /// Brings the metrics up to date (each tick).
    func updateMetrics() {
        metrics.update(Self.metricCounts(progress, read: feed.read))
        metrics.questionsOpen.record(admitted.count)
        metrics.samplersAlive.record(actorSystem.receptionist.lookup(SamplerActor.key).count)
        metrics.verifiersAlive.record(actorSystem.receptionist.lookup(VerifierActor.key).count)
        metrics.trainerLag.record(stream.waiting.count)
        metrics.trainerExamples.record(Int(clamping: progress.trainerExamples))
        metrics.journalBytes.record(journal.growth)
    }

    func emitProgress() {
        lastProgress = .now
        progress.openQuestions = admitted.count
        let line = progress.line(samplers: actorSystem.receptionist.lookup(SamplerActor.key).count,
                                 verifiers: actorSystem.receptionist.lookup(VerifierActor.key).count,
                                 trainerLag: stream.waiting.count)
        if textLog {
            logger.notice("\(line.text)")
        } else {
            logger.notice("progress", metadata: line.metadata)
        }
        if stallWatch.stalled(paths: progress.pathsReceived, done: progress.done, now: .now, timeout: config.coordinator.stallTimeout) {
            end(.failed("no progress for \(RunProgress.format(seconds: config.coordinator.stallTimeout.seconds)); \(stallCause())"))
        }
        files.writeProgress(progress, finished: outcome != nil)
    }

    /// Why the run makes no progress, for the stall error: the trainer when records wait on it
    /// with the window full (sampling waits for it), else the samplers.
    private func stallCause() -> String {
        let samplers = actorSystem.receptionist.lookup(SamplerActor.key).count
        if stream.isFull(window: config.coordinator.trainerWindow) || (!stream.waiting.isEmpty && admitted.isEmpty) {
            return "the trainer holds the run up: \(trainerBackPressure()); samplers alive: \(samplers)"
        }
        return samplers == 0 ? "no sampler is connected" : "samplers alive: \(samplers)"
    }

    /// The trainer's side of back-pressure, in words.
    private func trainerBackPressure() -> String {
        let connected = !actorSystem.receptionist.lookup(TrainerActor.key).isEmpty
        return "\(stream.waiting.count) records wait for its acknowledgement (trainer_window \(config.coordinator.trainerWindow)), "
            + "and it is \(connected ? "connected but does not acknowledge them" : "not connected")"
    }

    /// Reports, once per episode, a trainer window that stays full: the trainer, not the
    /// samplers, is what the run waits for.
    func watchTrainerWindow(now: ContinuousClock.Instant) {
        let full = stream.isFull(window: config.coordinator.trainerWindow) && outcome == nil
        switch stallWatch.trainerWindow(full: full, now: now, patience: max(config.monitor.interval * 2, .seconds(5))) {
        case let .backPressure(waited):
            log(.warning, "back-pressure from the trainer: sampling waits for it", [
                "waiting_s": "\(RunProgress.format(seconds: waited.seconds))", "cause": "\(trainerBackPressure())",
            ])
        case .caughtUp: log(.notice, "trainer caught up; sampling goes on", ["records.waiting": "\(stream.waiting.count)"])
        case nil: break
        }
    }

    func finishRun(_ result: Outcome) {
        let summary = progress.summary()
        if textLog {
            logger.notice("\(summary.text)")
        } else {
            logger.notice("summary", metadata: summary.metadata)
        }
        if result == .finished, progress.resumptions > 0, progress.pathsThisRun == 0 {
            // Typically the main job run twice into the same folder.
            log(.notice, "nothing was left to sample: the output folder held this run, resumed to its end; for a new run use another --output (or move the folder away)",
                ["output": "\(config.output.path)"])
        }
        switch result {
        case .finished: log(.notice, "run finished", ["output": "\(config.output.path)"])
        case .interrupted: log(.warning, "run interrupted", [:])
        case let .failed(reason): log(.error, "run failed", ["reason": "\(reason)"])
        }
        files.writeProgress(progress, finished: outcome != nil)
        do {
            try journal.sync()
        } catch {
            log(.error, "cannot sync the journal", ["error": "\(error)"])
        }
        do {
            try files.writeManifest(config: config, progress: progress, outcome: result, durableSequence: stream.durable)
        } catch {
            log(.error, "cannot write manifest.json", ["error": "\(error)"])
        }
    }
}
