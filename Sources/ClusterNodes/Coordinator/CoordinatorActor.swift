import ActorCluster
import Backends
import CoreMetrics
import Distributed
import Foundation
import Logging
import Metrics
import SelfImproveCore
import Wire

/// The coordinator: reads the data set as a stream, runs the run's method for every question
/// (``QuestionMethod``: LMSI's sample-and-vote today), leases the paths it asks for to
/// samplers, has the verifier tier score what it asks to be scored, and streams each finished
/// question's record to the trainer, which acknowledges each after it is durable. What every
/// method shares lives here (leases, retries, verifier dispatch, the record stream, the
/// journal); what a method computes lives in its state machine.
///
/// Memory is bounded by settings, not by the data set: at most `open_questions` questions are
/// in the lease book or at the verifiers, and at most `trainer_window` records wait for the
/// trainer's acknowledgement; while either is full, no new question is read (backpressure).
///
/// Crash recovery: every question read, every record voted and every acknowledgement goes to
/// the journal (``CoordinatorJournal``); a coordinator started on an output folder holding a
/// journal of the same run continues that run (see `docs/cluster.md`, "Delivery guarantees").
///
/// The actor's state is one isolation domain, so its concerns are extensions, one file each:
/// the samplers' calls (`+Samplers`), the methods (`+Methods`), the verifier tier
/// (`+Verifiers`), the record stream and its journal (`+TrainerStream`), and what the operator
/// sees (`+Reporting`). Their rules are pure types with unit tests of their own: ``WorkLedger``
/// (leases), ``QuestionMethods``, ``ScoreQueue``, ``RecordStream``, ``StallWatch``.
public distributed actor CoordinatorActor: ClusterCallable {
    public typealias ActorSystem = ClusterSystem

    /// The key the coordinator checks in under; every other node looks it up.
    public static let key = ReceptionKey<CoordinatorActor>("coordinator")

    public static let wireMethods: [WireMethod<CoordinatorActor>] = [
        .init("Coordinator.requestWork") { try await $0.requestWork($1.next()) },
        .init("Coordinator.reportFailure") { try await $0.reportFailure($1.next()) },
    ]

    /// How a run ended.
    public enum Outcome: Sendable, Equatable {
        case finished
        case interrupted
        case failed(String)
    }

    let config: ClusterConfig
    let logger: Logger
    /// With CURVE: only samplers' keys act as samplers, each sampler name under one key.
    let callers: CallerChecks
    let samplerNames = SamplerNameBinding()
    /// The lease ids samplers see: unpredictable, unlike the ledger's sequential ones.
    let leaseIDs = LeaseIDCipher()
    let textLog: Bool
    var ledger: WorkLedger
    var feed: QuestionFeed
    let sampling: Selfimprove_V1_SamplingSettings
    var progress: RunProgress
    /// Prometheus metrics (no-ops unless the process exports them), following `progress`.
    var metrics: CoordinatorMetrics
    /// The open questions' methods and their events.
    var methods: QuestionMethods
    /// Score work for the verifier tier.
    var scoring = ScoreQueue()
    /// Whether score requests carry the gold answer (a verifier of the run is the oracle).
    let sendsGold: Bool
    /// Voted records on their way to the trainer.
    var stream: RecordStream
    var senderWake: CheckedContinuation<Void, Never>?
    var senderStopped = false
    /// The trainer whose durable sequence number was last asked for; a new trainer (restarted)
    /// is asked before anything is sent to it.
    var trainerInSync: ClusterSystem.ActorID?
    var samplerNodes: [String: String] = [:]
    /// Samplers told that the run is over.
    var samplersTold = Set<String>()
    var lastProgress = ContinuousClock.now
    var stallWatch = StallWatch(now: .now)
    var files: RunOutputFiles
    var outcome: Outcome?
    private var outcomeWaiters: [CheckedContinuation<Outcome, Never>] = []

    let journal: CoordinatorJournal
    /// Questions read and not yet voted (what a compacted journal must hold), by admission order.
    var admitted: [String: (serial: Int, question: Question)] = [:]
    private var admissionSerial = 0
    /// An fsync of the journal is running off the actor: no compaction meanwhile.
    var journalSyncing = false

    /// - Throws: If the data set cannot be opened.
    public init(config: ClusterConfig, logger: Logger, actorSystem: ClusterSystem) throws {
        self.actorSystem = actorSystem
        self.config = config
        self.logger = logger
        self.callers = CallerChecks(config: config, coordinatorEndpoint: nil)
        self.textLog = config.monitor.format == .text
        self.files = RunOutputFiles(folder: config.output)
        let journal = try CoordinatorJournal(url: config.output.appendingPathComponent("coordinator.journal"), runIdentity: config.runIdentity)
        let recovered = journal.recovered
        self.journal = journal
        self.ledger = WorkLedger(m: config.method.m, pathsPerRequest: config.method.pathsPerRequest,
                                 leaseDuration: config.coordinator.leaseTimeout, maxAttempts: config.coordinator.maxAttempts,
                                 firstLeaseID: UInt64(recovered.resumptions) << 40 + 1)
        if let pool = config.method.search?.rolloutPool { ledger.reservedPools = [pool] }
        self.feed = try QuestionFeed(config.dataset)
        self.methods = QuestionMethods(factory: config.method.factory(scoresPaths: !config.verifiers.isEmpty, exemplars: config.prompt.exemplars,
                                                                      template: config.prompt.template),
                                       vote: config.method.vote.rawValue)
        self.sendsGold = config.verifiers.contains { $0.chain.contains { $0.kind == .gold } }
        self.sampling = Self.samplingSettings(config)
        var progress = RunProgress(total: QuestionFeed.estimateCount(config.dataset))
        progress.startedAt = Date(timeIntervalSince1970: Double(recovered.startedUnixMs) / 1000)
        self.stream = RecordStream()
        if recovered.hasProgress {
            feed.resume(after: Int(recovered.feed.questionsRead), skippedLines: Int(recovered.feed.linesSkipped))
            // Their methods start again from the beginning (their leases died with the old
            // coordinator; paths it had are not journaled).
            for question in recovered.openQuestions where admitted[question.id] == nil {
                admissionSerial += 1
                admitted[question.id] = (admissionSerial, question)
                methods.post(.start(question))
            }
            stream = RecordStream(waiting: recovered.pendingRecords.map(EncodedRecord.init), nextSequence: recovered.nextSequence,
                                  durable: recovered.durableSequence)
            progress.restore(votes: recovered.votes, stored: recovered.stored)
            progress.datasetLinesSkipped = Int(recovered.feed.linesSkipped)
            progress.resumptions = Int(recovered.resumptions)
            progress.startRates()
        }
        self.progress = progress
        self.metrics = CoordinatorMetrics(node: config.coordinator.address.name, baseline: Self.metricCounts(progress, read: feed.read))
    }

    /// The run's sampling settings, as every grant carries them.
    private static func samplingSettings(_ config: ClusterConfig) -> Selfimprove_V1_SamplingSettings {
        var sampling = Selfimprove_V1_SamplingSettings()
        sampling.temperature = config.method.temperature
        sampling.topP = config.method.topP
        sampling.maxTokens = UInt32(config.method.maxTokens)
        sampling.stop = config.method.stop
        sampling.seed = config.seed
        return sampling
    }

    /// Runs until every question is durably stored (`.finished`), the task is cancelled
    /// (`.interrupted`), or the run cannot go on (`.failed`). Writes `manifest.json` and logs
    /// the summary either way.
    public func run() async -> Outcome {
        log(.notice, "run started", [
            "run": "\(config.name)", "questions": "\(progress.total)", "m": "\(config.method.m)",
            "samplers.configured": "\(config.samplers.count)", "verifiers.configured": "\(config.verifiers.count)",
            "config.hash": "\(config.hash)", "output": "\(config.output.path)",
        ])
        if let repair = journal.repair {
            log(.warning, "journal tail repaired", ["journal": "\(journal.url.path)", "repair": "\(repair)"])
        }
        if journal.recovered.hasProgress {
            log(.notice, "run resumed from the journal", [
                "questions.stored": "\(progress.done)", "questions.read": "\(feed.read)", "open.restarted": "\(admitted.count)",
                "records.to_resend": "\(stream.waiting.count)", "sequence.next": "\(stream.nextSequence)", "resumption": "\(progress.resumptions)",
            ])
        }
        // A clean journal (and the resumption count) before any work.
        compactJournal()
        if outcome != nil { return await finishEarly() }
        runMethods()
        refill()
        let events = actorSystem.nodeEvents()
        let eventTask = Task { for await event in events { self.handle(event) } }
        let tickTask = Task { while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(100))
            self.tick()
        } }
        let senderTask = Task { await self.sendRecords() }
        let result = await withTaskCancellationHandler {
            await waitForOutcome()
        } onCancel: {
            Task { await self.end(.interrupted) }
        }
        logger.debug("Run over; draining", metadata: ["outcome": "\(result)", "pending": "\(stream.waiting.count)", "sending": "\(stream.inFlight)"])
        tickTask.cancel()
        eventTask.cancel()
        // Let a batch the trainer is storing finish (bounded), so the manifest matches the files.
        // In a task of its own: this one may be cancelled (Ctrl-C), which would end the waits
        // and the calls below at once.
        await Task {
            wakeSender()
            for _ in 0 ..< 50 where !senderStopped {
                try? await Task.sleep(for: .milliseconds(100))
            }
            senderTask.cancel()
            if result != .finished { await syncWithTrainer() }
        }.value
        finishRun(result)
        return result
    }

    private func finishEarly() async -> Outcome {
        let result = outcome ?? .failed("journal")
        finishRun(result)
        return result
    }

    private func waitForOutcome() async -> Outcome {
        if let outcome { return outcome }
        return await withCheckedContinuation { outcomeWaiters.append($0) }
    }

    func end(_ result: Outcome) {
        guard outcome == nil else { return }
        logger.debug("Run ending", metadata: ["outcome": "\(result)"])
        outcome = result
        for waiter in outcomeWaiters { waiter.resume(returning: result) }
        outcomeWaiters.removeAll()
    }

    /// Reads questions while there is room.
    func refill() {
        guard outcome == nil else { return }
        while !feed.exhausted, admitted.count < config.coordinator.openQuestions, !stream.isFull(window: config.coordinator.trainerWindow) {
            do {
                guard let question = try feed.next(onSkip: { error in
                    progress.datasetLinesSkipped += 1
                    log(.warning, "dataset line skipped", ["error": "\(error)"])
                }) else { break }
                if admitted[question.id] == nil {
                    admissionSerial += 1
                    admitted[question.id] = (admissionSerial, question)
                    journal.admitted(question, feed: feed.position)
                    post(.start(question))
                } else {
                    log(.warning, "question id appears twice among open questions; the second is skipped", ["question": "\(question.id)"])
                }
            } catch {
                end(.failed("\(error)"))
                return
            }
        }
        if feed.exhausted, progress.total != feed.read { progress.total = feed.read }
        checkFinished()
    }

    func checkFinished() {
        if feed.exhausted, admitted.isEmpty, stream.isDrained, outcome == nil {
            end(.finished)
        }
    }

    private func tick() {
        let now = ContinuousClock.now
        let expired = ledger.expire(now: now)
        for lease in expired.revoked {
            progress.leasesExpired += 1
            log(.notice, "lease expired; re-leased", ["lease": "\(leaseIDs.encode(lease.id.rawValue))", "sampler": "\(lease.sampler)",
                                                      "question": "\(lease.question.id)", "paths": "\(lease.indices.count)"])
        }
        for group in expired.outcome.completed { unitDone(group) }
        refill()
        updateMetrics()
        watchTrainerWindow(now: now)
        if journal.growth >= config.coordinator.journalCompactBytes, !journalSyncing {
            compactJournal()
        }
        if now - lastProgress >= config.monitor.interval {
            emitProgress()
        }
    }

    private func handle(_ event: ClusterSystem.NodeEvent) {
        switch event {
        case let .up(node):
            log(.notice, "node joined", ["node": "\(node)"])
        case let .down(node):
            let name = samplerNodes.removeValue(forKey: node.description)
            log(.warning, "node lost", ["node": "\(node)", "sampler": "\(name ?? "-")"])
            guard let name else { return }
            progress.samplersLost += 1
            let lost = ledger.samplerLost(name)
            if !lost.revoked.isEmpty {
                log(.notice, "leases of a lost sampler re-leased", ["sampler": "\(name)", "leases": "\(lost.revoked.count)",
                                                                    "paths": "\(lost.revoked.reduce(0) { $0 + $1.indices.count })"])
            }
            for group in lost.outcome.completed { unitDone(group) }
        }
    }

    /// Tells the verifiers and the trainer that the run is over (best effort), and keeps doing so
    /// for those that join later, for up to `linger`, until every verifier and the trainer of
    /// the config was told and every sampler was (in its next grant): nodes started apart from
    /// the coordinator (a Slurm job's tasks, pods) may join a coordinator that resumed a finished
    /// run and would otherwise wait for ever.
    public func releaseNodes(linger: Duration = .seconds(10)) async {
        var released = Set<ClusterSystem.ActorID>()
        let expected = config.verifiers.count + 1
        let deadline = ContinuousClock.now + linger
        repeat {
            for verifier in actorSystem.receptionist.lookup(VerifierActor.key) where !released.contains(verifier.id) {
                if (try? await ClusterSystem.withCallTimeout(.seconds(2), { try await verifier.finish() })) != nil { released.insert(verifier.id) }
            }
            for trainer in actorSystem.receptionist.lookup(TrainerActor.key) where !released.contains(trainer.id) {
                if (try? await ClusterSystem.withCallTimeout(.seconds(2), { try await trainer.finish() })) != nil { released.insert(trainer.id) }
            }
            if released.count >= expected, samplersTold.count >= config.samplers.count || Task.isCancelled { break }
            try? await Task.sleep(for: .milliseconds(200))
        } while ContinuousClock.now < deadline
    }

    func log(_ level: Logger.Level, _ event: String, _ metadata: Logger.Metadata) {
        if textLog, !metadata.isEmpty {
            let details = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            logger.log(level: level, "\(event) \(details)")
        } else {
            logger.log(level: level, "\(event)", metadata: metadata)
        }
    }
}
