import Foundation
import SelfImproveCore
import Testing

/// The search method as a state machine, driven by a scripted world: a "model" that writes
/// steps and completions from the prompt, and critics that score texts. No sockets.
@Suite("Search method")
struct SearchMethodTests {
    static let question = Question(id: "q", text: "Sam has 5 apples. Then Sam gets 3 more. How many apples does Sam have now?", kind: .number,
                                   gold: Answer(kind: .number, canonical: "8"))
    static let prompts = PromptBuilder(exemplars: [Exemplar(question: "Mia has 1 pen. Then Mia gets 1 more. How many pens?", reasoning: "1 + 1 = 2.", answer: "2")])

    /// Everything the method asked for, and what it yielded.
    struct Trace {
        var samples: [SampleWork] = []
        var scores: [ScoreWork] = []
        var result: SearchResult?
    }

    /// Runs `method` to its end: each request answered by `sample`/`score`, replies delivered
    /// in reverse order of asking within a batch (the method must not care).
    static func drive(_ method: SearchMethod, sample: (SampleWork) -> [SampledPath?], score: (ScoreWork) -> [Double], limit: Int = 10_000) -> Trace {
        var method = method
        var trace = Trace()
        var pending = method.start()
        var rounds = 0
        while !pending.isEmpty, rounds < limit {
            rounds += 1
            var next: [MethodStep] = []
            for step in pending.reversed() {
                switch step {
                case let .sample(work):
                    trace.samples.append(work)
                    next += method.sampled(work.key, paths: sample(work))
                case let .score(work):
                    trace.scores.append(work)
                    next += method.scored(work.key, scores: score(work), answers: nil)
                case let .finish(.search(result)):
                    trace.result = result
                case .finish:
                    Issue.record("not a search result")
                }
            }
            pending = next
        }
        return trace
    }

    static func path(_ text: String, tokens: Int = 10) -> SampledPath {
        SampledPath(text: text, completionTokens: tokens, finishReason: "stop", sampler: "s", modelVersion: "v")
    }

    /// The partial answer after the prompt's last `A:`.
    static func partial(_ prompt: String) -> String {
        String(prompt[prompt.range(of: "\nA:", options: .backwards)!.upperBound...])
    }

    /// A small world: three steps to the answer; a greedy step is right (" 5 + 3 = 8."), a
    /// sampled one wrong (" 5 + 3 = 9.") at even indices; rollouts finish from wherever they are.
    static func world(_ work: SampleWork) -> [SampledPath?] {
        let sofar = partial(work.prompt)
        return (0 ..< work.n).map { index in
            if work.purpose == "rollout" {
                let value = sofar.contains("= 9.") ? 9 : 8
                return path(" The answer is \(value).", tokens: 5)
            }
            let wrong = work.temperature != 0 && index % 2 == 0
            if !sofar.contains("starts with") { return path(index % 2 == 0 ? " Sam starts with 5 apples." : " Sam has 5 apples at first.") }
            if !sofar.contains(" = ") { return path(wrong ? " 5 + 3 = 9." : " 5 + 3 = 8.") }
            return path(sofar.contains("= 9.") ? " The answer is 9." : " The answer is 8.")
        }
    }

    /// Outcome 1 for the right final answer, process 1 for a right last step, value 1 on track.
    static func critics(_ work: ScoreWork) -> [Double] {
        work.texts.map { text in
            switch work.critic {
            case .verifiers: AnswerExtractor.extract(from: text, as: .number)?.canonical == "8" ? 1 : 0
            case .process, .value: text.contains("= 9.") ? 0 : 1
            }
        }
    }

    func method(_ configure: (inout SearchSettings) -> Void = { _ in }) -> SearchMethod {
        var settings = SearchSettings()
        settings.branching = Branching(rootMinimum: 2, rootMaximum: 2, belowMinimum: 2, belowMaximum: 3, alpha: 4)
        configure(&settings)
        return SearchMethod(question: Self.question, settings: settings, prompts: Self.prompts, answerStop: ["\n\n"])
    }

    @Test func theSimulationBudgetIsExactAndEveryRequestIsNew() throws {
        for budget in [1, 3, 7, 20] {
            let trace = Self.drive(method { $0.simulations = budget }, sample: Self.endless, score: Self.critics)
            let result = try #require(trace.result)
            #expect(result.counters.simulations == budget && !result.counters.exhausted)
            let keys = trace.samples.map(\.key) + trace.scores.map(\.key)
            #expect(Set(keys).count == keys.count, "a key was used twice")
            #expect(trace.samples.allSatisfy { $0.seed == UInt64($0.key) }, "each request draws with its own seed")
        }
    }

    /// A world that never runs out: every step is new and none states an answer.
    static func endless(_ work: SampleWork) -> [SampledPath?] {
        (0 ..< work.n).map { index in path(" Step \(work.seed ?? 0)-\(index).", tokens: work.purpose == "rollout" ? 5 : 10) }
    }

    @Test func theTokenBudgetStopsNewSimulations() throws {
        // One simulation costs at most 3 steps of 10 tokens and 3 × 4 rollouts of 5 tokens.
        let oneSimulation = 3 * 10 + 3 * 4 * 5
        for budget in [1, 40, 100, 250] {
            let trace = Self.drive(method { $0.simulations = 1000; $0.tokenBudget = budget }, sample: Self.endless, score: Self.critics)
            let result = try #require(trace.result)
            #expect(result.counters.completionTokens >= min(budget, 1))
            #expect(result.counters.completionTokens < budget + oneSimulation, "budget \(budget)")
            #expect(result.counters.simulations < 1000)
        }
    }

    @Test func expansionsAskForStepsWithTheFirstChildGreedy() throws {
        let trace = Self.drive(method { $0.simulations = 1; $0.stepMaxTokens = 40; $0.expansionTemperature = 0.9 }, sample: Self.world, score: Self.critics)
        let expansions = trace.samples.filter { $0.purpose == "expansion" }
        #expect(expansions.count == 2)
        #expect(expansions.contains { $0.n == 1 && $0.temperature == 0 }, "the first child is greedy")
        #expect(expansions.contains { $0.n == 1 && $0.temperature == 0.9 }, "the root's width is 2")
        for work in expansions {
            #expect(work.stop == [". ", "\n\n"])
            #expect(work.maxTokens == 40)
            #expect(work.prompt == Self.prompts.fewShotChainOfThought(Self.question.text))
        }
    }

    @Test func rolloutsContinueNewNodesOnTheirPool() throws {
        let trace = Self.drive(method { $0.simulations = 2; $0.rollouts = 4; $0.rolloutTemperature = 1; $0.rolloutPool = "fast"; $0.rolloutMaxTokens = 77 },
                               sample: Self.world, score: Self.critics)
        let rollouts = trace.samples.filter { $0.purpose == "rollout" }
        #expect(!rollouts.isEmpty)
        for work in rollouts {
            #expect(work.n == 4 && work.temperature == 1 && work.pool == "fast" && work.maxTokens == 77 && work.stop == ["\n\n"])
            #expect(Self.partial(work.prompt).hasSuffix("."), "a rollout continues a node's text")
        }
        // Their outcome rewards come from the verifier tier, text by text.
        let result = try #require(trace.result)
        #expect(result.counters.rollouts == rollouts.count * 4)
        #expect(trace.scores.filter { $0.critic == .verifiers }.reduce(0) { $0 + $1.texts.count } >= result.counters.rollouts)
    }

    @Test func theSearchFindsTheRightAnswerAndKeepsIt() throws {
        let trace = Self.drive(method { $0.simulations = 12; $0.weights = .init(value: 1, process: 1, outcome: 1) }, sample: Self.world, score: Self.critics)
        let result = try #require(trace.result)
        #expect(result.bestAnswer?.canonical == "8")
        #expect(result.kept)
        let best = try #require(result.best)
        #expect(result.paths[best].text.hasSuffix("The answer is 8."))
        // The tree holds the wrong branch too, valued lower.
        let wrong = result.nodes.indices.filter { result.nodes[$0].text == " 5 + 3 = 9." }
        let right = result.nodes.indices.filter { result.nodes[$0].text == " 5 + 3 = 8." }
        #expect(!wrong.isEmpty && !right.isEmpty)
        #expect(wrong.allSatisfy { w in right.allSatisfy { result.nodes[$0].value > result.nodes[w].value } })
        // The process critic saw each new node's whole trajectory.
        #expect(trace.scores.contains { $0.critic == .process && $0.texts.contains { $0.hasSuffix(" 5 + 3 = 9.") && $0.contains("starts with") } })
    }

    @Test func theRewardIsTheWeightedMeanOfTheCriticsThatApply() throws {
        // Process 1 (right step), value from rollouts 1: an open right node's reward is 1; a
        // finished wrong answer has process 0, value (its own outcome) 0 and outcome 0.
        let trace = Self.drive(method { $0.simulations = 12; $0.weights = .init(value: 2, process: 1, outcome: 1) }, sample: Self.world, score: Self.critics)
        let result = try #require(trace.result)
        for node in result.nodes where node.reward != nil {
            let reward = try #require(node.reward)
            if node.terminal {
                let outcome = try #require(node.outcome)
                #expect(abs(reward - ((node.process ?? 0) * 1 + outcome * 2 + outcome * 1) / 4) < 1e-9)
            } else {
                let estimate = try #require(node.estimate)
                #expect(abs(reward - ((node.process ?? 0) * 1 + estimate * 2) / 3) < 1e-9)
            }
        }
    }

    @Test func aValueJudgeReplacesRollouts() throws {
        let trace = Self.drive(method { $0.simulations = 12; $0.value = .judge }, sample: Self.world, score: Self.critics)
        #expect(!trace.samples.contains { $0.purpose == "rollout" })
        #expect(trace.scores.contains { $0.critic == .value })
        #expect(try #require(trace.result).bestAnswer?.canonical == "8")
    }

    @Test func theMajorityOutcomeAsksNoVerifier() throws {
        // Label-free: the tree's majority answer is the outcome reward. In this world the right
        // branch is drawn twice as often, so its answer wins.
        let trace = Self.drive(method { $0.simulations = 10; $0.outcome = .majority }, sample: Self.world, score: { _ in
            Issue.record("no critic should be asked")
            return []
        })
        #expect(trace.scores.isEmpty)
        let result = try #require(trace.result)
        #expect(result.bestAnswer?.canonical == "8")
        #expect(result.nodes.filter(\.terminal).allSatisfy { $0.outcome == ($0.answer == "8" ? 1 : 0) })
    }

    @Test func aSmallTreeIsExhaustedBeforeALargeBudget() throws {
        // This world has one right and one wrong branch: once both are finished nothing grows.
        let trace = Self.drive(method { $0.simulations = 10_000 }, sample: Self.world, score: Self.critics)
        let result = try #require(trace.result)
        #expect(result.counters.exhausted && result.counters.simulations < 100)
        #expect(result.bestAnswer?.canonical == "8")
    }

    @Test func duplicateAndEmptyStepsAddNoNodesAndTheSearchStillEnds() throws {
        var drawn = 0
        let trace = Self.drive(method { $0.simulations = 50 }, sample: { work in
            if work.purpose == "expansion" { drawn += work.n }
            return (0 ..< work.n).map { index in (Int(work.seed ?? 0) + index) % 2 == 0 ? Self.path(" Same step.") : Self.path("  ") }
        }, score: Self.critics)
        let result = try #require(trace.result)
        #expect(result.nodes.count <= 1 + 2 * 8, "one distinct child per node at most")
        #expect(result.counters.merged + result.counters.emptySteps + result.counters.expansions == result.counters.stepsDrawn)
        #expect(result.counters.stepsDrawn == drawn)
        #expect(result.counters.emptySteps > 0 && result.counters.merged > 0)
        #expect(result.nodes.allSatisfy { $0.depth <= 8 }, "the depth limit holds")
        #expect(result.best == nil && !result.kept)
    }

    @Test func givenUpRequestsEndTheSearchWithoutAResult() throws {
        let trace = Self.drive(method { $0.simulations = 6 }, sample: { Array(repeating: nil, count: $0.n) }, score: Self.critics)
        let result = try #require(trace.result)
        // Two barren expansions of the root, then nothing can grow: the tree is exhausted.
        #expect(result.counters.simulations == 2 && result.counters.exhausted)
        #expect(result.nodes.count == 1)
        #expect(result.best == nil)
    }

    @Test func nearDuplicateSiblingsMergeByEditDistance() throws {
        let trace = Self.drive(method { $0.simulations = 1; $0.mergeDistance = 3 }, sample: { work in
            (0 ..< work.n).map { _ in Self.path(work.temperature == 0 ? " Sam starts with 5 apples." : " Sam starts with 5 apple.") }
        }, score: Self.critics)
        let result = try #require(trace.result)
        #expect(result.nodes.count == 2)
        #expect(result.counters.merged == 1)
    }

    // MARK: - Exports

    /// root → a (0.9) → {c (0.9, answer), d (0.2, answer)}, root → b (0.3, open).
    static let tree: [SearchResult.Node] = [
        .init(parent: nil, text: "", depth: 0, visits: 6, value: 0.6, terminal: false),
        .init(parent: 0, text: " Sam starts with 5 apples.", depth: 1, visits: 4, value: 0.9, terminal: false),
        .init(parent: 0, text: " Sam has 5.", depth: 1, visits: 2, value: 0.3, terminal: false),
        .init(parent: 1, text: " 5 + 3 = 8. The answer is 8.", depth: 2, visits: 3, value: 0.9, terminal: true, answer: "8"),
        .init(parent: 1, text: " 5 + 3 = 9. The answer is 9.", depth: 2, visits: 1, value: 0.2, terminal: true, answer: "9"),
        .init(parent: 2, text: " unvisited", depth: 2, visits: 0, value: 0, terminal: false),
    ]

    @Test func preferencePairsAreSiblingsApartByTheMargin() {
        let pairs = SearchExport.preferencePairs(question: "Sam?", nodes: Self.tree, margin: 0.2)
        #expect(pairs.count == 2)
        #expect(pairs[0].prompt == "Q: Sam?\nA:" && pairs[0].chosen == Self.tree[1].text && pairs[0].rejected == Self.tree[2].text)
        #expect(pairs[1].prompt == "Q: Sam?\nA: Sam starts with 5 apples." && pairs[1].chosen == Self.tree[3].text && pairs[1].rejected == Self.tree[4].text)
        #expect(pairs.allSatisfy { $0.chosenValue - $0.rejectedValue >= 0.2 && $0.chosen != $0.rejected })
        #expect(SearchExport.preferencePairs(question: "Sam?", nodes: Self.tree, margin: 0.65).count == 1)
    }

    @Test func stepLabelsFollowFinishedTrajectories() {
        let labels = SearchExport.stepLabels(question: "Sam?", nodes: Self.tree, threshold: 0.5)
        #expect(labels.count == 2)
        #expect(labels[0].prompt == "Q: Sam?\nA:")
        #expect(labels[0].completions == [Self.tree[1].text, Self.tree[3].text] && labels[0].labels == [true, true])
        #expect(labels[1].completions == [Self.tree[1].text, Self.tree[4].text] && labels[1].labels == [true, false])
        #expect(labels.allSatisfy { $0.completions.count == $0.labels.count })
    }

    @Test func exportsSurviveACorruptTree() {
        // A record read back from disk may hold anything: a parent cycle or out of range.
        var nodes = Self.tree
        nodes[1].parent = 4
        nodes[2].parent = 99
        _ = SearchExport.preferencePairs(question: "q", nodes: nodes, margin: 0)
        let labels = SearchExport.stepLabels(question: "q", nodes: nodes, threshold: 0.5)
        #expect(labels.allSatisfy { $0.completions.count <= nodes.count + 1 })
    }
}
