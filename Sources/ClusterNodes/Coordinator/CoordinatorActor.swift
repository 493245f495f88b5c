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

    private let config: ClusterConfig
    private let logger: Logger
    /// With CURVE: only samplers' keys act as samplers, each sampler name under one key.
    private let callers: CallerChecks
    private let samplerNames = SamplerNameBinding()
    /// The lease ids samplers see: unpredictable, unlike the ledger's sequential ones.
    private let leaseIDs = LeaseIDCipher()
    private let textLog: Bool
    private var ledger: WorkLedger
    private var feed: QuestionFeed
    private let sampling: Selfimprove_V1_SamplingSettings
    private var progress: RunProgress
    /// Prometheus metrics (no-ops unless the process exports them), following `progress`.
    private var metrics: CoordinatorMetrics

    /// Makes each question's method, and the questions' methods at rest (not being run).
    private let methodFactory: any QuestionMethodFactory
    private var methods: [String: any QuestionMethod] = [:]
    /// Events for the methods, in arrival order, and whether a task is running them.
    private var methodInbox: [MethodEvent] = []
    private var methodsRunning = false

    /// Whether score requests carry the gold answer (a verifier of the run is the oracle).
    private var sendsGold: Bool { config.verifiers.contains { $0.chain.contains { $0.kind == .gold } } }
    /// The verifier node that scored each open question's first texts (refine's labels).
    private var labelledBy: [String: String] = [:]
    /// Texts waiting for a verifier call, and the calls in flight.
    private var toScore: [ScoreJob] = []
    private var scoreCalls = 0
    /// Voted records not yet sent, in sequence order.
    private var pending: [EncodedRecord] = []
    /// Records in the batch the trainer is storing now (the first ones of `pending`).
    private var sending = 0
    private var nextSequence: UInt64 = 1
    private var durable: UInt64 = 0
    private var senderWake: CheckedContinuation<Void, Never>?
    private var senderStopped = false
    private var samplerNodes: [String: String] = [:]
    /// Samplers told that the run is over.
    private var samplersTold = Set<String>()
    private var verifierTurn = 0
    private var lastProgress = ContinuousClock.now
    private var outcome: Outcome?
    private var outcomeWaiters: [CheckedContinuation<Outcome, Never>] = []

    private let journal: CoordinatorJournal
    /// Questions read and not yet voted (what a compacted journal must hold), by admission order.
    private var admitted: [String: (serial: Int, question: Question)] = [:]
    private var admissionSerial = 0
    /// Records up to this sequence are durable in the journal (may be sent to the trainer).
    private var journalSyncedThrough: UInt64 = 0
    /// An fsync of the journal is running off the actor: no compaction meanwhile.
    private var journalSyncing = false
    /// The trainer whose durable sequence number was last asked for; a new trainer (restarted)
    /// is asked before anything is sent to it.
    private var trainerInSync: ClusterSystem.ActorID?

    /// - Throws: If the data set cannot be opened.
    public init(config: ClusterConfig, logger: Logger, actorSystem: ClusterSystem) throws {
        self.actorSystem = actorSystem
        self.config = config
        self.logger = logger
        self.callers = CallerChecks(config: config, coordinatorEndpoint: nil)
        self.textLog = config.monitor.format == .text
        let journal = try CoordinatorJournal(url: config.output.appendingPathComponent("coordinator.journal"), runIdentity: config.runIdentity)
        let recovered = journal.recovered
        self.journal = journal
        self.ledger = WorkLedger(m: config.method.m, pathsPerRequest: config.method.pathsPerRequest,
                                 leaseDuration: config.coordinator.leaseTimeout, maxAttempts: config.coordinator.maxAttempts,
                                 firstLeaseID: UInt64(recovered.resumptions) << 40 + 1)
        if let pool = config.method.search?.rolloutPool { ledger.reservedPools = [pool] }
        self.feed = try QuestionFeed(config.dataset)
        self.methodFactory = config.method.factory(scoresPaths: !config.verifiers.isEmpty, exemplars: config.prompt.exemplars,
                                                  template: config.prompt.template)
        var sampling = Selfimprove_V1_SamplingSettings()
        sampling.temperature = config.method.temperature
        sampling.topP = config.method.topP
        sampling.maxTokens = UInt32(config.method.maxTokens)
        sampling.stop = config.method.stop
        sampling.seed = config.seed
        self.sampling = sampling
        var progress = RunProgress(total: QuestionFeed.estimateCount(config.dataset))
        progress.startedAt = Date(timeIntervalSince1970: Double(recovered.startedUnixMs) / 1000)
        if recovered.hasProgress {
            feed.resume(after: Int(recovered.feed.questionsRead), skippedLines: Int(recovered.feed.linesSkipped))
            // Their methods start again from the beginning (their leases died with the old
            // coordinator; paths it had are not journaled).
            for question in recovered.openQuestions where admitted[question.id] == nil {
                admissionSerial += 1
                admitted[question.id] = (admissionSerial, question)
                methodInbox.append(.start(question))
            }
            pending = recovered.pendingRecords.map(EncodedRecord.init)
            nextSequence = recovered.nextSequence
            durable = recovered.durableSequence
            journalSyncedThrough = nextSequence - 1
            progress.restore(votes: recovered.votes, stored: recovered.stored)
            progress.datasetLinesSkipped = Int(recovered.feed.linesSkipped)
            progress.resumptions = Int(recovered.resumptions)
            progress.startRates()
        }
        self.progress = progress
        self.metrics = CoordinatorMetrics(node: config.coordinator.address.name, baseline: Self.metricCounts(progress, read: feed.read))
    }

    /// The counts the metrics' counters follow.
    private static func metricCounts(_ progress: RunProgress, read: Int) -> CoordinatorMetrics.Counts {
        CoordinatorMetrics.Counts(
            read: read, voted: progress.voted, stored: progress.done, pathsReceived: progress.pathsReceived, pathsDropped: progress.pathsDropped,
            pathsGivenUp: progress.pathsGivenUp, tokens: progress.completionTokens, leasesGranted: progress.leasesGranted,
            leasesExpired: progress.leasesExpired, leasesFailed: progress.leasesFailed, samplersLost: progress.samplersLost,
            criticTexts: progress.criticTexts, searchSteps: progress.pathsByPurpose["expansion", default: 0],
            searchRollouts: progress.pathsByPurpose["rollout", default: 0])
    }

    /// Brings the metrics up to date (each tick).
    private func updateMetrics() {
        metrics.update(Self.metricCounts(progress, read: feed.read))
        metrics.questionsOpen.record(admitted.count)
        metrics.samplersAlive.record(actorSystem.receptionist.lookup(SamplerActor.key).count)
        metrics.verifiersAlive.record(actorSystem.receptionist.lookup(VerifierActor.key).count)
        metrics.trainerLag.record(pending.count)
        metrics.trainerExamples.record(Int(clamping: progress.trainerExamples))
        metrics.journalBytes.record(journal.growth)
    }

    // MARK: - Samplers' calls

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

    // MARK: - Running

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
                "records.to_resend": "\(pending.count)", "sequence.next": "\(nextSequence)", "resumption": "\(progress.resumptions)",
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
        logger.debug("Run over; draining", metadata: ["outcome": "\(result)", "pending": "\(pending.count)", "sending": "\(sending)"])
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

    /// After an interrupted or failed run: asks the trainer what it holds, in case an
    /// acknowledgement was lost, so the manifest counts what the files contain.
    private func syncWithTrainer() async {
        guard let trainer = actorSystem.receptionist.lookup(TrainerActor.key).first else { return }
        if let receipt = try? await ClusterSystem.withCallTimeout(.seconds(2), { try await trainer.durableSequence() }) {
            acknowledge(receipt, sent: 0)
        }
    }

    private func waitForOutcome() async -> Outcome {
        if let outcome { return outcome }
        return await withCheckedContinuation { outcomeWaiters.append($0) }
    }

    private func end(_ result: Outcome) {
        guard outcome == nil else { return }
        logger.debug("Run ending", metadata: ["outcome": "\(result)"])
        outcome = result
        for waiter in outcomeWaiters { waiter.resume(returning: result) }
        outcomeWaiters.removeAll()
    }

    /// Reads questions while there is room.
    private func refill() {
        guard outcome == nil else { return }
        while !feed.exhausted, admitted.count < config.coordinator.openQuestions,
              pending.count < config.coordinator.trainerWindow
        {
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

    private func checkFinished() {
        if feed.exhausted, admitted.isEmpty, pending.isEmpty, sending == 0, outcome == nil {
            end(.finished)
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

    private func emitProgress() {
        lastProgress = .now
        progress.treesOpen = methodFactory.name == "search" ? admitted.count : 0
        let line = progress.line(samplers: actorSystem.receptionist.lookup(SamplerActor.key).count,
                                 verifiers: actorSystem.receptionist.lookup(VerifierActor.key).count,
                                 trainerLag: pending.count)
        if textLog {
            logger.notice("\(line.text)")
        } else {
            logger.notice("progress", metadata: line.metadata)
        }
        if stalled() {
            end(.failed("no progress for \(RunProgress.format(seconds: config.coordinator.stallTimeout.seconds)); \(stallCause())"))
        }
        writeProgressFile()
    }

    private var lastAdvance = (time: ContinuousClock.now, paths: 0, done: 0)
    /// Since when the trainer window has been full (no new question is admitted), and whether
    /// that was reported.
    private var trainerWindowFull: (since: ContinuousClock.Instant, reported: Bool)?

    /// Why the run makes no progress, for the stall error: the trainer when records wait on it
    /// with the window full (sampling waits for it), else the samplers.
    private func stallCause() -> String {
        let samplers = actorSystem.receptionist.lookup(SamplerActor.key).count
        if pending.count >= config.coordinator.trainerWindow || (!pending.isEmpty && admitted.isEmpty) {
            return "the trainer holds the run up: \(trainerBackPressure()); samplers alive: \(samplers)"
        }
        return samplers == 0 ? "no sampler is connected" : "samplers alive: \(samplers)"
    }

    /// The trainer's side of back-pressure, in words.
    private func trainerBackPressure() -> String {
        let connected = !actorSystem.receptionist.lookup(TrainerActor.key).isEmpty
        return "\(pending.count) records wait for its acknowledgement (trainer_window \(config.coordinator.trainerWindow)), "
            + "and it is \(connected ? "connected but does not acknowledge them" : "not connected")"
    }

    /// Reports, once per episode, a trainer window that stays full: the trainer, not the
    /// samplers, is what the run waits for.
    private func watchTrainerWindow(now: ContinuousClock.Instant) {
        guard pending.count >= config.coordinator.trainerWindow, outcome == nil else {
            if trainerWindowFull?.reported == true { log(.notice, "trainer caught up; sampling goes on", ["records.waiting": "\(pending.count)"]) }
            trainerWindowFull = nil
            return
        }
        guard let full = trainerWindowFull else {
            trainerWindowFull = (now, false)
            return
        }
        let patience = max(config.monitor.interval * 2, .seconds(5))
        guard !full.reported, now - full.since >= patience else { return }
        trainerWindowFull?.reported = true
        log(.warning, "back-pressure from the trainer: sampling waits for it", [
            "waiting_s": "\(RunProgress.format(seconds: (now - full.since).seconds))", "cause": "\(trainerBackPressure())",
        ])
    }

    private func stalled() -> Bool {
        let now = ContinuousClock.now
        if progress.pathsReceived != lastAdvance.paths || progress.done != lastAdvance.done {
            lastAdvance = (now, progress.pathsReceived, progress.done)
            return false
        }
        return now - lastAdvance.time > config.coordinator.stallTimeout
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

    // MARK: - Methods

    /// Something for a question's method: it starts, a unit's paths are in, or scores are.
    enum MethodEvent: Sendable {
        case start(Question)
        case sampled(WorkLedger.Group)
        case scored(question: String, key: Int, scores: [Double], answers: [Answer?]?)

        var questionID: String {
            switch self {
            case let .start(question): question.id
            case let .sampled(group): group.question.id
            case let .scored(question, _, _, _): question
            }
        }
    }

    /// What running a method's events asked for.
    struct MethodOutput: Sendable {
        var question: Question
        var samples: [SampleWork] = []
        var scores: [ScoreWork] = []
        /// The question's record, when its method finished.
        var verdict: GroupVerdict?
    }

    /// A unit's every path is settled: its paths go to the question's method.
    private func unitDone(_ group: WorkLedger.Group) {
        if let purpose = group.purpose { progress.pathsByPurpose[purpose, default: 0] += group.paths.count { $0 != nil } }
        post(.sampled(group))
    }

    private func post(_ event: MethodEvent) {
        methodInbox.append(event)
        runMethods()
    }

    /// Runs the methods' events off the actor, in batches, one batch at a time: a batch takes
    /// the methods it concerns out of `methods` and puts back those not finished, so one
    /// question's events run one at a time and in order. At low rates an event runs at once; at
    /// high rates events travel in batches and the hop rate stays flat.
    private func runMethods() {
        guard !methodsRunning, !methodInbox.isEmpty else { return }
        methodsRunning = true
        Task {
            while !self.methodInbox.isEmpty {
                var batch: [MethodEvent] = []
                var checkedOut: [String: any QuestionMethod] = [:]
                var startedHere = Set<String>()
                for event in self.methodInbox {
                    let id = event.questionID
                    if case .start = event {
                        startedHere.insert(id)
                    } else if let method = self.methods.removeValue(forKey: id) {
                        checkedOut[id] = method
                    } else if checkedOut[id] == nil, !startedHere.contains(id) {
                        // Its method finished (a late event) or never started: nothing to run.
                        self.log(.warning, "an event for a question without a running method was dropped", ["question": "\(id)"])
                        continue
                    }
                    batch.append(event)
                }
                self.methodInbox = []
                let (outputs, atRest) = await Self.run(batch, methods: checkedOut, factory: self.methodFactory, vote: self.config.method.vote.rawValue)
                for (id, method) in atRest { self.methods[id] = method }
                for output in outputs { self.apply(output) }
            }
            self.methodsRunning = false
        }
    }

    /// Runs a batch of events on their methods (off the actor: voting is the heaviest work per
    /// question). Returns what they asked for, and the methods that are not finished.
    private nonisolated static func run(_ events: [MethodEvent], methods: [String: any QuestionMethod],
                                        factory: any QuestionMethodFactory, vote: String) async
        -> (outputs: [MethodOutput], atRest: [String: any QuestionMethod])
    {
        var methods = methods
        var outputs: [MethodOutput] = []
        for event in events {
            let id = event.questionID
            var method: any QuestionMethod
            let steps: [MethodStep]
            switch event {
            case let .start(question):
                method = factory.make(for: question)
                steps = method.start()
            case let .sampled(group):
                guard let resting = methods[id] else { continue }
                method = resting
                let paths = group.paths.indices.map { index in
                    group.paths[index].map { path in
                        MethodPath(text: path.text, completionTokens: path.completionTokens, finishReason: path.finishReason,
                                   logProbability: path.logProbability, sampler: group.samplers[index] ?? "",
                                   modelVersion: group.modelVersions[index] ?? "")
                    }
                }
                steps = method.sampled(group.key, paths: paths)
            case let .scored(_, key, scores, answers):
                guard let resting = methods[id] else { continue }
                method = resting
                steps = method.scored(key, scores: scores, answers: answers)
            }
            var output = MethodOutput(question: method.question)
            var finished = false
            for step in steps {
                switch step {
                case let .sample(work): output.samples.append(work)
                case let .score(work): output.scores.append(work)
                case let .finish(result):
                    output.verdict = MethodRecords.verdict(for: result, vote: vote)
                    finished = true
                }
            }
            methods[id] = finished ? nil : method
            outputs.append(output)
        }
        return (outputs, methods)
    }

    /// Does what a method asked: leases for its paths, verifier calls for its texts, and the
    /// record of a finished question.
    private func apply(_ output: MethodOutput) {
        guard outcome == nil else { return }
        for work in output.samples where !ledger.add(output.question, work: work) {
            log(.warning, "a method asked twice for the same request; the second is ignored", ["question": "\(output.question.id)", "key": "\(work.key)"])
        }
        for work in output.scores {
            toScore.append(ScoreJob(question: output.question, work: work))
            if work.critic != .verifiers || methodFactory.name == "search" { progress.criticTexts += work.texts.count }
        }
        if !output.scores.isEmpty { dispatchScoring() }
        if var verdict = output.verdict {
            if let verifier = labelledBy.removeValue(forKey: output.question.id), !verdict.record.method.isEmpty {
                verdict.record.labelledBy = verifier
                verdict.labelledBy = verifier
            }
            recordReady(verdict)
        }
    }

    // MARK: - Verifier tier

    /// Texts of one question's method to score.
    struct ScoreJob: Sendable {
        var question: Question
        var work: ScoreWork
    }

    /// Jobs in one verifier call at most.
    static let maxScoreBatch = 64

    /// Calls are few and batched: at most two per verifier in flight, each taking every job
    /// waiting (up to ``maxScoreBatch``), so at low rates a job goes at once and at high rates
    /// the call rate stays flat.
    private func dispatchScoring() {
        let callLimit = 2 * max(1, actorSystem.receptionist.lookup(VerifierActor.key).count)
        while !toScore.isEmpty, scoreCalls < callLimit {
            let batch = Array(toScore.prefix(Self.maxScoreBatch))
            toScore.removeFirst(batch.count)
            scoreCalls += 1
            Task {
                if let (scored, verifier) = await self.scores(for: batch) {
                    for (job, reply) in zip(batch, scored.groups) {
                        if job.work.key == 0 { self.labelledBy[job.question.id] = verifier }
                        let kind = job.question.kind
                        let answers = reply.answersIncluded
                            ? reply.scores.map { $0.hasAnswer ? Answer(kind: kind, canonical: $0.answer) : nil } : nil
                        self.methodInbox.append(.scored(question: job.question.id, key: job.work.key,
                                                        scores: reply.scores.map(\.combined), answers: answers))
                    }
                    self.runMethods()
                }
                self.scoreCalls -= 1
                self.dispatchScoring()
            }
        }
    }

    /// Scores (and extracted answers) for a batch of jobs from some verifier, trying the next
    /// one on failure until one answers (nil: the run ended first).
    private func scores(for batch: [ScoreJob]) async -> (reply: Selfimprove_V1_ScoreBatchReply, verifier: String)? {
        var request = Selfimprove_V1_ScoreBatch()
        request.groups = batch.map { job in
            var wire = Selfimprove_V1_ScoreRequest()
            wire.questionID = job.question.id
            wire.question = job.question.text
            wire.answerKind = job.question.kind.rawValue
            wire.paths = job.work.texts
            wire.critic = job.work.critic.rawValue
            if sendsGold, let gold = job.question.gold { wire.gold = gold.canonical }
            return wire
        }
        var attempt = 0
        while outcome == nil {
            let verifiers = actorSystem.receptionist.lookup(VerifierActor.key)
            if verifiers.isEmpty {
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            verifierTurn &+= 1
            let verifier = verifiers[verifierTurn % verifiers.count]
            do {
                let started = ContinuousClock.now
                let reply = try await verifier.scoreGroups(request)
                metrics.verifierCallDuration.record(duration: ContinuousClock.now - started)
                if reply.groups.count == batch.count, zip(reply.groups, batch).allSatisfy({ $0.scores.count == $1.work.texts.count }) {
                    return (reply, reply.verifier.isEmpty ? "\(verifier.id.node)" : reply.verifier)
                }
                attempt += 1
                log(.warning, "verifier returned the wrong number of scores; trying another",
                    ["verifier": "\(verifier.id.node)", "groups": "\(batch.count)", "replies": "\(reply.groups.count)", "attempt": "\(attempt)"])
            } catch {
                attempt += 1
                log(.warning, "verifier call failed; trying another", ["verifier": "\(verifier.id.node)", "error": "\(error)", "attempt": "\(attempt)"])
            }
            try? await Task.sleep(for: .milliseconds(min(2000, 50 * attempt)))
        }
        return nil
    }

    private func recordReady(_ verdict: GroupVerdict) {
        guard outcome == nil else { return }
        progress.add(verdict)
        var record = verdict.record
        record.sequence = nextSequence
        nextSequence += 1
        admitted[record.questionID] = nil
        let encoded = EncodedRecord(record)
        journal.completed(encoded, votes: progress.voteCounters)
        if !record.accepted, record.method.isEmpty {
            log(.info, "record rejected by the vote", ["question": "\(record.questionID)",
                                                       "confidence": "\(RunProgress.fixed(record.confidence))",
                                                       "majority": "\(record.hasMajority ? record.majority : "-")"])
        }
        pending.append(encoded)
        wakeSender()
    }

    // MARK: - Trainer stream

    private func wakeSender() {
        senderWake?.resume()
        senderWake = nil
    }

    /// One batch in flight at a time, in sequence order; acknowledged records leave the window.
    /// A failed call is retried (the trainer skips sequences it already stored).
    private func sendRecords() async {
        defer { senderStopped = true }
        var failures = 0
        while !Task.isCancelled {
            if outcome != nil { return }   // over: no new batches (a finished run has none left)
            if pending.isEmpty {
                checkFinished()
                await withCheckedContinuation { senderWake = $0 }
                continue
            }
            guard let trainer = actorSystem.receptionist.lookup(TrainerActor.key).first else {
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            if trainer.id != trainerInSync {
                // A trainer seen for the first time (or restarted) says what it holds; the
                // stream resumes after its durable sequence number.
                do {
                    let receipt = try await ClusterSystem.withCallTimeout(config.network.callTimeout) { try await trainer.durableSequence() }
                    trainerInSync = trainer.id
                    log(.notice, "trainer in sync", ["trainer": "\(trainer.id.node)", "durable_sequence": "\(receipt.durableSequence)",
                                                     "records": "\(receipt.records)", "to_send": "\(pending.filter { $0.sequence > receipt.durableSequence }.count)"])
                    acknowledge(receipt, sent: 0)
                } catch {
                    failures += 1
                    log(.warning, "trainer does not answer; will retry", ["error": "\(error)", "attempt": "\(failures)"])
                    try? await Task.sleep(for: .milliseconds(min(2000, 50 * failures)))
                }
                continue
            }
            let count = min(pending.count, config.coordinator.trainerBatch)
            let records = Array(pending.prefix(count))
            var batch = Selfimprove_V1_EncodedRecordBatch()
            batch.records = records.map(\.bytes)
            sending = count
            // Write-ahead: the trainer may store a record only once the journal holds it.
            if let last = records.last, last.sequence > journalSyncedThrough {
                guard await syncJournal() else {
                    sending = 0
                    return
                }
            }
            do {
                let receipt = try await trainer.append(batch)
                sending = 0
                failures = 0
                acknowledge(receipt, sent: records.count)
            } catch {
                sending = 0
                failures += 1
                log(.warning, "trainer call failed; will resend", ["error": "\(error)", "records": "\(count)", "attempt": "\(failures)"])
                try? await Task.sleep(for: .milliseconds(min(2000, 50 * failures)))
            }
        }
    }

    private func acknowledge(_ receipt: Selfimprove_V1_AppendReceipt, sent: Int) {
        if receipt.durableSequence < durable {
            log(.error, "the trainer holds less than it acknowledged before (its output was replaced?); records up to the earlier acknowledgement are not sent again",
                ["trainer.durable_sequence": "\(receipt.durableSequence)", "acknowledged": "\(durable)"])
        }
        if receipt.durableSequence >= nextSequence {
            log(.warning, "the trainer holds sequence numbers the journal lacks; numbering continues after them",
                ["trainer.durable_sequence": "\(receipt.durableSequence)", "journal.next_sequence": "\(nextSequence)"])
            nextSequence = receipt.durableSequence + 1
        }
        let advanced = receipt.durableSequence > durable
        durable = max(durable, receipt.durableSequence)
        progress.trainerExamples = receipt.examples
        var acknowledged = 0
        while let first = pending.first, first.sequence <= durable {
            progress.stored(pending.removeFirst())
            acknowledged += 1
        }
        if advanced || acknowledged > 0 {
            journal.acknowledged(durable, stored: progress.storedCounters)
        }
        if acknowledged < sent {
            log(.warning, "trainer did not store every record; resending the rest", ["sent": "\(sent)", "stored": "\(acknowledged)"])
        }
        refill()
        checkFinished()
    }

    // MARK: - Journal

    /// Makes the journal durable (the fsync runs off the actor, so the samplers' calls go on).
    /// - Returns: false when the journal cannot be written: the run then fails, since going on
    ///   would break the promise that a restart loses nothing.
    private func syncJournal() async -> Bool {
        let through = nextSequence - 1
        let descriptor: Int32
        do {
            descriptor = try journal.flushForSync()
        } catch {
            end(.failed("the journal cannot be written: \(error)"))
            return false
        }
        journalSyncing = true
        let synced = await Task.detached { fsync(descriptor) == 0 ? nil : String(cString: strerror(errno)) }.value
        journalSyncing = false
        if let synced {
            end(.failed("the journal cannot be synced (\(journal.url.path)): \(synced)"))
            return false
        }
        journalSyncedThrough = max(journalSyncedThrough, through)
        return true
    }

    /// Rewrites the journal as the current state (bounded: open questions and unacknowledged
    /// records), durably.
    private func compactJournal() {
        var snapshot = CoordinatorJournal.Snapshot()
        snapshot.feed = feed.position
        snapshot.nextSequence = nextSequence
        snapshot.durableSequence = durable
        snapshot.votes = progress.voteCounters
        snapshot.stored = progress.storedCounters
        snapshot.openQuestions = admitted.values.sorted { $0.serial < $1.serial }.map(\.question)
        snapshot.pendingRecords = pending
        do {
            try journal.compact(snapshot)
            journalSyncedThrough = nextSequence - 1
            logger.debug("Journal compacted", metadata: ["bytes": "\(journal.growth)", "open": "\(snapshot.openQuestions.count)",
                                                        "pending": "\(snapshot.pendingRecords.count)"])
        } catch {
            end(.failed("\(error)"))
        }
    }

    // MARK: - End of run

    private func finishRun(_ result: Outcome) {
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
        writeProgressFile()
        do {
            try journal.sync()
        } catch {
            log(.error, "cannot sync the journal", ["error": "\(error)"])
        }
        do {
            try RunManifest(config: config, progress: progress, outcome: result, durableSequence: durable)
                .write(to: config.output.appendingPathComponent("manifest.json"))
        } catch {
            log(.error, "cannot write manifest.json", ["error": "\(error)"])
        }
    }

    /// `progress.json` in the output folder: the latest numbers, for `launch`'s progress bar
    /// and for scripts.
    private func writeProgressFile() {
        let object: [String: Any] = [
            "done": progress.done, "total": progress.total, "paths": progress.pathsReceived,
            "paths_stored": progress.pathsStored, "accepted": progress.accepted, "voted": progress.voted,
            "elapsed_s": progress.elapsed.seconds, "finished": outcome != nil,
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        let url = config.output.appendingPathComponent("progress.json")
        try? data.write(to: url, options: .atomic)
        appendProgressSample()
    }

    /// The previous line of `progress.jsonl`, for its rates.
    private var lastSample: (seconds: Double, paths: Int, tokens: Int)?

    /// `progress.jsonl`: one line per progress report (seconds since the run started, counts,
    /// and the rates since the previous line), the time series `selfimprove report` draws.
    /// Best effort: a failed write loses a point of a chart, nothing else.
    private func appendProgressSample() {
        let seconds = Date().timeIntervalSince(progress.startedAt)
        var object: [String: Any] = [
            "t_s": (seconds * 1000).rounded() / 1000, "done": progress.done, "voted": progress.voted, "paths": progress.pathsReceived,
            "tokens": progress.completionTokens, "leases_failed": progress.leasesFailed, "leases_expired": progress.leasesExpired,
        ]
        if let last = lastSample, seconds > last.seconds {
            object["paths_per_s"] = Double(progress.pathsReceived - last.paths) / (seconds - last.seconds)
            object["tokens_per_s"] = Double(progress.completionTokens - last.tokens) / (seconds - last.seconds)
        }
        lastSample = (seconds, progress.pathsReceived, progress.completionTokens)
        guard var line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        line.append(0x0A)
        let url = config.output.appendingPathComponent("progress.jsonl")
        if let handle = try? FileHandle(forWritingTo: url) {
            _ = try? handle.seekToEnd()
            try? handle.write(contentsOf: line)
            try? handle.close()
        } else {
            try? line.write(to: url)
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

    private func log(_ level: Logger.Level, _ event: String, _ metadata: Logger.Metadata) {
        if textLog, !metadata.isEmpty {
            let details = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            logger.log(level: level, "\(event) \(details)")
        } else {
            logger.log(level: level, "\(event)", metadata: metadata)
        }
    }
}
