import Foundation
import Logging
import SelfImproveCore
import Wire

/// The coordinator's counters: what the progress line, the summary and the manifest report.
/// Constant size whatever the data set's size.
struct RunProgress: Sendable {
    /// Questions in the data set (after `limit`), counted before the run starts.
    var total: Int
    /// Records the trainer acknowledged as durable.
    var done = 0
    var voted = 0
    /// Accepted among the votes taken (the acceptance rate's numerator).
    var acceptedVotes = 0
    /// Stored records that were accepted, and the paths stored records hold: what the data
    /// files contain.
    var accepted = 0
    var pathsStored = 0
    var pathsReceived = 0
    /// Late or duplicate paths dropped by the lease book.
    var pathsDropped = 0
    /// Path indices given up after every attempt failed.
    var pathsGivenUp = 0
    var completionTokens = 0
    var confidenceSum = 0.0
    var leasesGranted = 0
    var leasesExpired = 0
    var leasesFailed = 0
    var samplersLost = 0
    var datasetLinesSkipped = 0
    var trainerExamples: UInt64 = 0
    var evaluation = EvaluationReport()
    /// refine: how the paths went through SCORE's stages.
    var refine = RefineCounts()
    /// refine: the stage counts by the verifier node that labelled the solutions.
    var refineByVerifier: [String: RefineCounts] = [:]
    /// verify_refine: answers refined, right before and after.
    var verifyRefine = VerifyRefineCounts()
    /// search: what the finished questions' trees did (journaled).
    var search = SearchCounts()
    /// Paths received by what they were for (a search's `expansion`s and `rollout`s), and texts
    /// sent to the critics, since this coordinator started: for the live rates.
    var pathsByPurpose: [String: Int] = [:]
    var criticTexts = 0
    /// Questions admitted and not finished (a search's open trees), set before each progress line.
    var openQuestions = 0
    let started = ContinuousClock.now
    /// When this coordinator granted its first lease: work flows from then on (before it, the
    /// other nodes start and connect).
    var firstLease: ContinuousClock.Instant?
    /// When the latest path arrived: after the last one, the run only votes, scores and stores.
    var lastPath: ContinuousClock.Instant?
    /// When the run first started (before any coordinator restart).
    var startedAt = Date()

    /// Paths and tokens counted before this coordinator started (a resumed run): rates are
    /// over this coordinator's lifetime.
    var baseline = (paths: 0, tokens: 0)
    /// How many times the run was resumed after a coordinator restart.
    var resumptions = 0

    /// Counters at the previous progress line, for rates.
    private var mark = (time: ContinuousClock.now, paths: 0, tokens: 0, done: 0, expansions: 0)
    private var recentQuestionRate = 0.0

    init(total: Int) { self.total = total }

    mutating func add(_ verdict: GroupVerdict) {
        voted += 1
        if verdict.record.accepted { acceptedVotes += 1 }
        confidenceSum += verdict.vote.confidence
        pathsGivenUp += verdict.record.paths.filter(\.givenUp).count
        evaluation.add(answers: verdict.answers, vote: verdict.vote, gold: verdict.gold)
        if let counts = verdict.refine {
            refine += counts
            refineByVerifier[verdict.labelledBy ?? "-", default: RefineCounts()] += counts
        }
        if let counts = verdict.verifyRefine { verifyRefine += counts }
        if let counts = verdict.search { search += counts }
    }

    /// A record the trainer acknowledged as durable.
    mutating func stored(_ record: EncodedRecord) {
        done += 1
        if record.accepted { accepted += 1 }
        pathsStored += record.pathsWithText
    }

    var elapsed: Duration { ContinuousClock.now - started }

    /// Paths and tokens received by this coordinator (since its start).
    var pathsThisRun: Int { pathsReceived - baseline.paths }
    var tokensThisRun: Int { completionTokens - baseline.tokens }

    /// Rates start from the current counters (after restoring a journal's).
    mutating func startRates() {
        baseline = (pathsReceived, completionTokens)
        mark = (.now, pathsReceived, completionTokens, done, 0)
    }

    /// One progress report: the numbers since the last one.
    struct Line {
        var metadata: Logger.Metadata
        var text: String
    }

    mutating func line(samplers: Int, verifiers: Int, trainerLag: Int) -> Line {
        let now = ContinuousClock.now
        let seconds = max(0.001, (now - mark.time).seconds)
        let pathsPerSecond = Double(pathsReceived - mark.paths) / seconds
        let tokensPerSecond = Double(completionTokens - mark.tokens) / seconds
        let questionRate = Double(done - mark.done) / seconds
        recentQuestionRate = recentQuestionRate == 0 ? questionRate : 0.7 * recentQuestionRate + 0.3 * questionRate
        let expansions = pathsByPurpose["expansion", default: 0]
        let expansionsPerSecond = Double(expansions - mark.expansions) / seconds
        mark = (now, pathsReceived, completionTokens, done, expansions)
        let agreement = voted > 0 ? confidenceSum / Double(voted) : 0
        let acceptance = voted > 0 ? Double(acceptedVotes) / Double(voted) : 0
        let remaining = max(0, total - done)
        let eta: String = remaining == 0 ? "0s" : recentQuestionRate > 0 ? Self.format(seconds: Double(remaining) / recentQuestionRate) : "?"
        let percent = total > 0 ? Double(done) * 100 / Double(total) : 100
        var metadata: Logger.Metadata = [
            "questions.done": "\(done)", "questions.total": "\(total)",
            "paths_per_s": "\(Int(pathsPerSecond.rounded()))", "tokens_per_s": "\(Int(tokensPerSecond.rounded()))",
            "agreement": "\(Self.fixed(agreement))", "acceptance": "\(Self.fixed(acceptance))",
            "samplers.alive": "\(samplers)", "verifiers.alive": "\(verifiers)", "trainer.lag": "\(trainerLag)", "eta": "\(eta)",
        ]
        var text = "progress \(done)/\(total) questions (\(String(format: "%.1f", percent))%) | \(Int(pathsPerSecond.rounded())) paths/s | "
            + "\(Int(tokensPerSecond.rounded())) tokens/s | agreement \(Self.fixed(agreement)) | acceptance \(Self.fixed(acceptance)) | "
            + "samplers \(samplers) | verifiers \(verifiers) | trainer lag \(trainerLag) | ETA \(eta)"
        if refine.solutions > 0 {
            text += " | refine: \(refine.judgedWrong) of \(refine.solutions) judged wrong, \(refine.critiqued) critiqued, "
                + "\(refine.passedFilters) passed the filters, \(refine.refinedRight) refined right"
            metadata["refine.judged_wrong"] = "\(refine.judgedWrong)"
            metadata["refine.critiqued"] = "\(refine.critiqued)"
            metadata["refine.passed_filters"] = "\(refine.passedFilters)"
            metadata["refine.refined_right"] = "\(refine.refinedRight)"
        }
        if search.trees > 0 || expansions > 0 {
            let meanDepth = search.trees > 0 ? Double(search.depthSum) / Double(search.trees) : 0
            let simulationsPerTree = search.trees > 0 ? Double(search.totals.simulations) / Double(search.trees) : 0
            let tokensPerTree = search.trees > 0 ? search.totals.completionTokens / search.trees : 0
            text += " | search: \(openQuestions) trees open, \(String(format: "%.1f", expansionsPerSecond)) steps/s, "
                + "\(pathsByPurpose["rollout", default: 0]) rollouts, \(criticTexts) critic calls, "
                + "finished trees: mean depth \(String(format: "%.1f", meanDepth)), budget spent \(String(format: "%.1f", simulationsPerTree)) simulations and \(tokensPerTree) tokens per tree"
            metadata["search.trees_open"] = "\(openQuestions)"
            metadata["search.steps_per_s"] = "\(String(format: "%.1f", expansionsPerSecond))"
            metadata["search.rollouts"] = "\(pathsByPurpose["rollout", default: 0])"
            metadata["search.critic_calls"] = "\(criticTexts)"
            metadata["search.mean_depth"] = "\(String(format: "%.2f", meanDepth))"
            metadata["search.simulations_per_tree"] = "\(String(format: "%.2f", simulationsPerTree))"
            metadata["search.tokens_per_tree"] = "\(tokensPerTree)"
        }
        return Line(metadata: metadata, text: text)
    }

    /// The end-of-run summary.
    func summary() -> Line {
        let seconds = max(0.001, elapsed.seconds)
        var metadata: Logger.Metadata = [
            "questions": "\(done)", "paths": "\(pathsStored)", "accepted": "\(accepted)",
            "mean_confidence": "\(Self.fixed(voted > 0 ? confidenceSum / Double(voted) : 0))",
            "paths_per_s": "\(Int((Double(pathsThisRun) / seconds).rounded()))", "seconds": "\(Self.fixed(seconds))",
        ]
        var text = "summary: \(done) questions, \(pathsStored) paths, \(accepted) accepted, mean confidence \(Self.fixed(voted > 0 ? confidenceSum / Double(voted) : 0)), "
            + "\(Int((Double(pathsThisRun) / seconds).rounded())) paths/s over \(Self.format(seconds: seconds))"
        if let first = evaluation.firstPathAccuracy, let majority = evaluation.majorityAccuracy {
            metadata["accuracy.first_path"] = "\(Self.fixed(first))"
            metadata["accuracy.majority"] = "\(Self.fixed(majority))"
            metadata["labelled"] = "\(evaluation.labelled)"
            text += "; accuracy on \(evaluation.labelled) labelled: first path \(Self.fixed(first)), majority \(Self.fixed(majority))"
        }
        if refine.solutions > 0 {
            text += "; refine: \(refine.judgedWrong) of \(refine.solutions) solutions judged wrong, \(refine.critiqued) critiqued, "
                + "\(refine.passedFilters) passed the filters, \(refine.refinedRight) refined right"
            if refine.rebalanced > 0 { text += ", \(refine.rebalanced) rebalanced" }
            metadata["refine.judged_wrong"] = "\(refine.judgedWrong)"
            metadata["refine.refined_right"] = "\(refine.refinedRight)"
        }
        if verifyRefine.questions > 0 {
            text += "; verify-then-refine: \(verifyRefine.refined) of \(verifyRefine.questions) answers refined"
            if verifyRefine.labelled > 0 {
                text += ", accuracy \(Self.fixed(Double(verifyRefine.rightBefore) / Double(verifyRefine.labelled))) before, "
                    + "\(Self.fixed(Double(verifyRefine.rightAfter) / Double(verifyRefine.labelled))) after, "
                    + "\(verifyRefine.wrongToRight) wrong→right, \(verifyRefine.rightToWrong) right→wrong"
            }
            metadata["verify.refined"] = "\(verifyRefine.refined)"
        }
        if search.trees > 0 {
            let totals = search.totals
            text += "; search: \(search.trees) trees, \(totals.simulations) simulations, \(totals.expansions) nodes "
                + "(\(totals.merged) merged, \(totals.emptySteps) empty steps), \(totals.rollouts) rollouts, \(totals.criticCalls) critic calls, "
                + "\(totals.completionTokens) tokens, mean depth \(String(format: "%.2f", Double(search.depthSum) / Double(search.trees))), "
                + "\(search.kept) best trajectories kept, \(search.exhausted) trees exhausted before their budget"
            metadata["search.trees"] = "\(search.trees)"
            metadata["search.nodes"] = "\(totals.expansions)"
            metadata["search.kept"] = "\(search.kept)"
        }
        if resumptions > 0 { text += "; resumed \(resumptions) times from its journal"; metadata["resumptions"] = "\(resumptions)" }
        if pathsGivenUp > 0 { text += "; \(pathsGivenUp) paths given up"; metadata["paths_given_up"] = "\(pathsGivenUp)" }
        return Line(metadata: metadata, text: text)
    }

    static func fixed(_ value: Double) -> String { String(format: "%.3f", value) }

    static func format(seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        if whole < 60 { return seconds < 10 ? String(format: "%.1fs", seconds) : "\(whole)s" }
        if whole < 3600 { return "\(whole / 60)m\(String(format: "%02d", whole % 60))s" }
        return "\(whole / 3600)h\(String(format: "%02d", whole % 3600 / 60))m"
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        let (whole, atto) = components
        return Double(whole) + Double(atto) / 1e18
    }
}
