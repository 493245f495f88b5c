/// AlphaLLM's η-MCTS over options (methods.md, section 2) as a per-question state machine.
///
/// One simulation: select a node by UCT down to one still below its branching width, expand
/// it (the missing children in one request of `n` steps, the first child greedy), evaluate the
/// new children with the critics (process reward from a judge, value from fast rollouts or a
/// judge, outcome reward of finished trajectories from the verifier tier or the tree's
/// majority), and back their rewards up. Simulations run one after another within a tree;
/// trees of many questions run at once, and every expansion, rollout and critic call is a
/// lease or a verifier call any node may take, so all samplers stay busy.
///
/// Keys: every request gets a new one (1, 2, ...), also its seed, so a node expanded again
/// draws new steps.
public struct SearchMethod: QuestionMethod {
    /// What a request of the method was for.
    enum Purpose: Sendable {
        case expansion(node: Int)
        case rollouts(node: Int)
        /// The outcome reward of `node`'s rollouts (the texts, in order).
        case rolloutOutcomes(node: Int)
        case process(nodes: [Int])
        case valueJudge(nodes: [Int])
        case outcome(nodes: [Int])
    }

    /// What the search knows of a node beyond the tree's counts.
    struct NodeInfo: Sendable {
        var answer: Answer?
        var completionTokens = 0
        /// Who drew the node's step.
        var sampler = ""
        var modelVersion = ""
        var process: Double?
        var valueJudge: Double?
        var outcome: Double?
        /// Completions from the node (its text appended), with their answers and outcome rewards.
        var rollouts: [SampledPath] = []
        var rolloutAnswers: [Answer?] = []
        var rolloutOutcomes: [Double?] = []
        /// The reward it was backed up with.
        var reward: Double?
        /// Expansions that added no child (all empty or merged).
        var barrenExpansions = 0
        var greedyDrawn = false
        /// The rollouts' mean outcome reward; a finished trajectory's own outcome.
        var estimate: Double? {
            let known = rolloutOutcomes.compactMap { $0 }
            return known.isEmpty ? nil : known.reduce(0, +) / Double(known.count)
        }
    }

    public let question: Question
    private let settings: SearchSettings
    /// The few-shot prompt up to `A:`; a node's prompt is this plus its trajectory.
    private let basePrompt: String
    /// The run's stop strings, which end a whole answer.
    private let answerStop: [String]
    private var tree = SearchTree()
    private var info = [NodeInfo()]
    private var purposes: [Int: Purpose] = [:]
    private var nextKey = 1
    /// Requests of the current simulation still awaited.
    private var awaited = 0
    private var expanding: Int?
    private var evaluating: [Int] = []
    private var counters = SearchCounters()

    /// - Parameters:
    ///   - prompts: The few-shot exemplars.
    ///   - answerStop: The run's stop strings (end of a whole answer).
    public init(question: Question, settings: SearchSettings, prompts: PromptBuilder, promptPrefix: String? = nil, answerStop: [String]) {
        self.question = question
        self.settings = settings
        self.basePrompt = prompts.fewShotChainOfThought(question.text, prefix: promptPrefix ?? prompts.fewShotChainOfThoughtPrefix())
        self.answerStop = answerStop
    }

    public mutating func start() -> [MethodStep] {
        nextSimulation()
    }

    public mutating func sampled(_ key: Int, paths: [SampledPath?]) -> [MethodStep] {
        guard let purpose = purposes.removeValue(forKey: key) else { return [] }
        switch purpose {
        case let .expansion(node):
            expanded(node, paths: paths)
            return settle()
        case let .rollouts(node):
            let drawn = paths.compactMap { $0 }
            counters.rollouts += drawn.count
            for path in drawn {
                counters.completionTokens += path.completionTokens
                var full = path
                full.text = tree.text(to: node) + path.text
                info[node].rollouts.append(full)
                info[node].rolloutAnswers.append(AnswerExtractor.extract(from: full.text, as: question.kind))
                info[node].rolloutOutcomes.append(nil)
            }
            if settings.outcome == .verifiers, !drawn.isEmpty {
                return [score(.rolloutOutcomes(node: node), texts: info[node].rollouts.map(\.text), critic: .verifiers)] + settle()
            }
            return settle()
        default:
            return settle()
        }
    }

    public mutating func scored(_ key: Int, scores: [Double], answers: [Answer?]?) -> [MethodStep] {
        guard let purpose = purposes.removeValue(forKey: key) else { return [] }
        switch purpose {
        case let .process(nodes):
            for (position, node) in nodes.enumerated() { info[node].process = scores[safe: position] }
        case let .valueJudge(nodes):
            for (position, node) in nodes.enumerated() { info[node].valueJudge = scores[safe: position] }
        case let .outcome(nodes):
            for (position, node) in nodes.enumerated() { info[node].outcome = scores[safe: position] }
        case let .rolloutOutcomes(node):
            for position in info[node].rolloutOutcomes.indices { info[node].rolloutOutcomes[position] = scores[safe: position] }
        case .expansion, .rollouts:
            break
        }
        return settle()
    }

    // MARK: - Simulations

    private var budgetSpent: Bool {
        counters.simulations >= settings.simulations
            || settings.tokenBudget.map { counters.completionTokens >= $0 } == true
    }

    /// Whether `node` may get another child now.
    private func wantsChildren(_ node: Int) -> Bool {
        let state = tree.nodes[node]
        guard !state.terminal, state.depth < settings.maxDepth, info[node].barrenExpansions < 2 else { return false }
        return state.children.count < settings.branching.width(depth: state.depth, spread: tree.spread(of: node))
    }

    /// Starts the next simulation, or finishes when the budget is spent or no node can grow
    /// any more (the tree is exhausted: every leaf finished or barren). A selection that ends
    /// on a node that cannot grow backs its reward up again and counts as a simulation, as in
    /// MCTS.
    private mutating func nextSimulation() -> [MethodStep] {
        while !budgetSpent {
            let node = tree.select(exploration: settings.exploration) { wantsChildren($0) }
            guard wantsChildren(node) else {
                if !tree.nodes.indices.contains(where: wantsChildren) {
                    counters.exhausted = true
                    break
                }
                tree.backpropagate(from: node, value: info[node].reward ?? 0)
                counters.simulations += 1
                continue
            }
            return expand(node)
        }
        return [.finish(.search(result()))]
    }

    private mutating func newKey(_ purpose: Purpose) -> Int {
        let key = nextKey
        nextKey += 1
        purposes[key] = purpose
        awaited += 1
        return key
    }

    private mutating func expand(_ node: Int) -> [MethodStep] {
        expanding = node
        let state = tree.nodes[node]
        var missing = max(1, settings.branching.width(depth: state.depth, spread: tree.spread(of: node)) - state.children.count)
        let prompt = basePrompt + tree.text(to: node)
        var steps: [MethodStep] = []
        func request(_ n: Int, temperature: Double?) -> MethodStep {
            let key = newKey(.expansion(node: node))
            return .sample(SampleWork(key: key, prompt: prompt, n: n, temperature: temperature, maxTokens: settings.stepMaxTokens,
                                      stop: settings.stepStop + answerStop, seed: UInt64(key), purpose: "expansion"))
        }
        if settings.greedyFirst, !info[node].greedyDrawn {
            info[node].greedyDrawn = true
            steps.append(request(1, temperature: 0))
            missing -= 1
        }
        if missing > 0 { steps.append(request(missing, temperature: settings.expansionTemperature)) }
        return steps
    }

    /// Adds the drawn steps under `node` (merging near-duplicates, skipping empty ones).
    private mutating func expanded(_ node: Int, paths: [SampledPath?]) {
        for path in paths.compactMap({ $0 }) {
            counters.completionTokens += path.completionTokens
            counters.stepsDrawn += 1
            var step = path.text
            let prefix = tree.text(to: node)
            let answer = AnswerExtractor.extract(from: prefix + step, as: question.kind)
            guard !step.allSatisfy(\.isWhitespace) else {
                counters.emptySteps += 1
                continue
            }
            // The stop string is part of the option (trailing spaces left to the next step);
            // servers leave it out of the text, so it is put back unless already there.
            if answer == nil, path.finishReason == "stop", let stop = settings.stepStop.first {
                let kept = String(stop.reversed().drop { $0 == " " }.reversed())
                if !step.hasSuffix(kept) { step += kept }
            }
            let depth = tree.nodes[node].depth + 1
            let (child, merged) = tree.add(step, under: node, terminal: answer != nil || depth >= settings.maxDepth,
                                           minDistance: settings.mergeDistance)
            if merged {
                counters.merged += 1
                continue
            }
            precondition(child == info.count, "tree and node info out of step")
            var added = NodeInfo()
            added.answer = answer
            added.completionTokens = path.completionTokens
            added.sampler = path.sampler
            added.modelVersion = path.modelVersion
            info.append(added)
            evaluating.append(child)
            counters.expansions += 1
        }
    }

    /// Called after every reply: once the expansion is in, asks the critics; once they are
    /// in, backs the rewards up and starts the next simulation.
    private mutating func settle() -> [MethodStep] {
        awaited -= 1
        guard awaited == 0 else { return [] }
        if let node = expanding {
            expanding = nil
            if evaluating.isEmpty { info[node].barrenExpansions += 1 }
            let requests = evaluate(evaluating)
            if !requests.isEmpty { return requests }
        }
        backUp()
        return nextSimulation()
    }

    /// The critics' requests for new nodes.
    private mutating func evaluate(_ nodes: [Int]) -> [MethodStep] {
        guard !nodes.isEmpty else { return [] }
        var steps: [MethodStep] = []
        let weights = settings.weights
        let texts = nodes.map { tree.text(to: $0) }
        if weights.process > 0 {
            steps.append(score(.process(nodes: nodes), texts: texts, critic: .process))
        }
        let open = nodes.filter { !tree.nodes[$0].terminal }
        let finished = nodes.filter { tree.nodes[$0].terminal }
        if weights.value > 0, !open.isEmpty {
            switch settings.value {
            case .judge:
                steps.append(score(.valueJudge(nodes: open), texts: open.map { tree.text(to: $0) }, critic: .value))
            case .rollouts where settings.rollouts > 0:
                for node in open {
                    let key = newKey(.rollouts(node: node))
                    steps.append(.sample(SampleWork(
                        key: key, prompt: basePrompt + tree.text(to: node), n: settings.rollouts, temperature: settings.rolloutTemperature,
                        maxTokens: settings.rolloutMaxTokens, stop: answerStop, seed: UInt64(key), pool: settings.rolloutPool, purpose: "rollout")))
                }
            case .rollouts:
                break
            }
        }
        if settings.outcome == .verifiers, weights.outcome > 0 || weights.value > 0, !finished.isEmpty {
            steps.append(score(.outcome(nodes: finished), texts: finished.map { tree.text(to: $0) }, critic: .verifiers))
        }
        return steps
    }

    private mutating func score(_ purpose: Purpose, texts: [String], critic: ScoreWork.Critic) -> MethodStep {
        counters.criticCalls += texts.count
        // Every text a search scores is a critic call, the verifiers' outcome rewards included.
        return .score(ScoreWork(key: newKey(purpose), texts: texts, critic: critic, isCriticCall: true))
    }

    /// The evaluated nodes' rewards, backed up.
    private mutating func backUp() {
        if settings.outcome == .majority { applyMajority() }
        for node in evaluating {
            let reward = reward(of: node)
            info[node].reward = reward
            tree.backpropagate(from: node, value: reward)
        }
        evaluating = []
        counters.simulations += 1
    }

    /// `outcome: majority`: every finished answer of the tree so far (trajectories and
    /// rollouts) votes; a trajectory's outcome is 1 when it agrees with the majority.
    private mutating func applyMajority() {
        let majority = SelfConsistency.vote(allAnswers()).majority
        for node in evaluating {
            if tree.nodes[node].terminal { info[node].outcome = info[node].answer != nil && info[node].answer == majority ? 1 : 0 }
            info[node].rolloutOutcomes = info[node].rolloutAnswers.map { $0 != nil && $0 == majority ? 1 : 0 }
        }
    }

    private func allAnswers() -> [Answer?] {
        info.indices.flatMap { node in (tree.nodes[node].terminal ? [info[node].answer] : []) + info[node].rolloutAnswers }
    }

    /// The critics' weighted mean over those that apply to the node.
    func reward(of node: Int) -> Double {
        let weights = settings.weights
        let terminal = tree.nodes[node].terminal
        var parts: [(Double, Double)] = []
        if weights.process > 0, let process = info[node].process { parts.append((weights.process, process)) }
        let value = terminal ? info[node].outcome : settings.value == .judge ? info[node].valueJudge : info[node].estimate
        if weights.value > 0, let value { parts.append((weights.value, value)) }
        if terminal, weights.outcome > 0 { parts.append((weights.outcome, info[node].outcome ?? 0)) }
        let total = parts.reduce(0) { $0 + $1.0 }
        return total > 0 ? parts.reduce(0) { $0 + $1.0 * $1.1 } / total : 0
    }

    // MARK: - Result

    private func result() -> SearchResult {
        var nodes: [SearchResult.Node] = []
        var paths: [SampledPath] = []
        var pathAnswers: [Answer?] = []
        var pathOutcomes: [Double?] = []
        for index in tree.nodes.indices {
            let state = tree.nodes[index], known = info[index]
            var node = SearchResult.Node(parent: state.parent, text: state.text, depth: state.depth, visits: state.visits, value: state.value,
                                         terminal: state.terminal, answer: known.answer?.canonical, process: known.process, outcome: known.outcome,
                                         estimate: state.terminal ? nil : known.estimate ?? known.valueJudge, reward: known.reward,
                                         completionTokens: known.completionTokens)
            if state.terminal, known.answer != nil {
                node.path = paths.count
                // A trajectory's tokens are its last step's (the rest are its ancestors'); its
                // origin is the sampler and model that finished it.
                paths.append(SampledPath(text: tree.text(to: index), completionTokens: known.completionTokens, finishReason: "stop",
                                        sampler: known.sampler, modelVersion: known.modelVersion))
                pathAnswers.append(known.answer)
                pathOutcomes.append(known.outcome)
            }
            for (position, rollout) in known.rollouts.enumerated() {
                node.rollouts.append(paths.count)
                paths.append(rollout)
                pathAnswers.append(known.rolloutAnswers[position])
                pathOutcomes.append(known.rolloutOutcomes[position])
            }
            nodes.append(node)
        }
        // The best finished trajectory by its reward (ties: more visits, then the earlier);
        // without one, the best rollout by its outcome reward.
        let finished = nodes.indices.filter { nodes[$0].path != nil && nodes[$0].reward != nil }
        var best: Int?
        if let node = finished.max(by: { (nodes[$0].reward!, nodes[$0].visits, -$0) < (nodes[$1].reward!, nodes[$1].visits, -$1) }) {
            best = nodes[node].path
        } else {
            best = paths.indices.filter { pathAnswers[$0] != nil }.max { (pathOutcomes[$0] ?? 0, -$0) < (pathOutcomes[$1] ?? 0, -$1) }
        }
        let bestOutcome = best.flatMap { pathOutcomes[$0] } ?? 0
        return SearchResult(question: question, nodes: nodes, paths: paths, answers: pathAnswers, outcomes: pathOutcomes, best: best,
                            kept: best != nil && bestOutcome >= settings.keepThreshold, counters: counters,
                            labelThreshold: settings.labelThreshold, pairMargin: settings.pairMargin)
    }
}

/// Makes ``SearchMethod``s (`method.name: search`).
public struct SearchMethodFactory: QuestionMethodFactory {
    public let settings: SearchSettings
    public let prompts: PromptBuilder
    public let answerStop: [String]
    private let promptPrefix: String
    public var name: MethodName { .search }

    public init(settings: SearchSettings, prompts: PromptBuilder, answerStop: [String]) {
        self.settings = settings
        self.prompts = prompts
        self.answerStop = answerStop
        self.promptPrefix = prompts.fewShotChainOfThoughtPrefix()
    }

    public func make(for question: Question) -> any QuestionMethod {
        SearchMethod(question: question, settings: settings, prompts: prompts, promptPrefix: promptPrefix, answerStop: answerStop)
    }
}
