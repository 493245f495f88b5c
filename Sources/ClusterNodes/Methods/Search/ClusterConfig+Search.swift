import SelfImproveCore

extension ClusterConfig {
    /// AlphaLLM's settings under `method.search` (``SearchSettings``); every key optional.
    static func parseSearch(_ map: ConfigMapping) throws(ConfigError) -> SearchSettings {
        var settings = SearchSettings()
        func number(_ map: ConfigMapping, _ key: String, _ current: Double, in range: ClosedRange<Double>) throws(ConfigError) -> Double {
            guard let value = map.optional(key) else { return current }
            let number = try value.double()
            if !range.contains(number) { throw value.error("must be between \(range.lowerBound) and \(range.upperBound), got \(number)") }
            return number
        }
        func count(_ map: ConfigMapping, _ key: String, _ current: Int, minimum: Int) throws(ConfigError) -> Int {
            guard let value = map.optional(key) else { return current }
            let number = try value.int()
            if number < minimum { throw value.error("must be at least \(minimum), got \(number)") }
            return number
        }
        settings.exploration = try number(map, "exploration", settings.exploration, in: 0 ... 100)
        settings.simulations = try count(map, "simulations", settings.simulations, minimum: 1)
        if let value = map.optional("token_budget") {
            let budget = try value.int()
            if budget < 1 { throw value.error("must be at least 1, got \(budget)") }
            settings.tokenBudget = budget
        }
        settings.maxDepth = try count(map, "max_depth", settings.maxDepth, minimum: 1)
        if let value = map.optional("branching") {
            let branching = try value.mapping()
            let defaults = settings.branching
            let rootMin = try count(branching, "root_min", defaults.rootMinimum, minimum: 1)
            let rootMax = try count(branching, "root_max", max(rootMin, defaults.rootMaximum), minimum: rootMin)
            let belowMin = try count(branching, "below_min", defaults.belowMinimum, minimum: 1)
            let belowMax = try count(branching, "below_max", max(belowMin, defaults.belowMaximum), minimum: belowMin)
            let alpha = try number(branching, "alpha", defaults.alpha, in: 0 ... 1000)
            try branching.finish()
            settings.branching = Branching(rootMinimum: rootMin, rootMaximum: rootMax, belowMinimum: belowMin, belowMaximum: belowMax, alpha: alpha)
        }
        settings.mergeDistance = try count(map, "merge_distance", settings.mergeDistance, minimum: 0)
        if let value = map.optional("step_stop") {
            settings.stepStop = try value.list().map { v throws(ConfigError) in try v.string() }
            if settings.stepStop.isEmpty || settings.stepStop.contains("") { throw value.error("must list at least one non-empty stop string") }
        }
        settings.stepMaxTokens = try count(map, "step_max_tokens", settings.stepMaxTokens, minimum: 1)
        if map.optional("expansion_temperature") != nil {
            settings.expansionTemperature = try number(map, "expansion_temperature", 0, in: 0 ... 5)
        }
        if let value = map.optional("greedy_first") { settings.greedyFirst = try value.bool() }
        settings.rollouts = try count(map, "rollouts", settings.rollouts, minimum: 0)
        settings.rolloutTemperature = try number(map, "rollout_temperature", settings.rolloutTemperature, in: 0 ... 5)
        if map.optional("rollout_max_tokens") != nil {
            settings.rolloutMaxTokens = try count(map, "rollout_max_tokens", 1, minimum: 1)
        }
        if let value = map.optional("rollout_pool") { settings.rolloutPool = try value.string() }
        if let value = map.optional("value") { settings.value = SearchSettings.ValueSource(rawValue: try value.choice(["rollouts", "judge"]))! }
        if let value = map.optional("outcome") { settings.outcome = SearchSettings.OutcomeSource(rawValue: try value.choice(["verifiers", "majority"]))! }
        if let value = map.optional("weights") {
            let weights = try value.mapping()
            let current = settings.weights
            settings.weights = SearchSettings.Weights(
                value: try number(weights, "value", current.value, in: 0 ... 1000),
                process: try number(weights, "process", current.process, in: 0 ... 1000),
                outcome: try number(weights, "outcome", current.outcome, in: 0 ... 1000))
            try weights.finish()
            if settings.weights.value + settings.weights.process + settings.weights.outcome <= 0 { throw value.error("at least one weight must be above 0") }
        }
        settings.keepThreshold = try number(map, "keep_threshold", settings.keepThreshold, in: 0 ... 1)
        settings.labelThreshold = try number(map, "label_threshold", settings.labelThreshold, in: 0 ... 1)
        settings.pairMargin = try number(map, "pair_margin", settings.pairMargin, in: 0 ... 1)
        try map.finish()
        return settings
    }

    /// What a search needs of the rest of the config: verifiers for the critics it asks, a
    /// judge backend on each for the judge critics, and a rollout pool that exists beside
    /// samplers for everything else.
    static func checkSearch(method: MethodSettings, samplers: [SamplerSettings], verifiers: [VerifierSettings], file: String) throws(ConfigError) {
        let judgeCritics = method.search.map { $0.weights.process > 0 || ($0.weights.value > 0 && $0.value == .judge) } ?? false
        if !judgeCritics, let verifier = verifiers.first(where: { $0.judgeBackend != nil && !$0.chain.contains { $0.kind == .judge } }) {
            throw ConfigError(file: file, key: "verifiers", line: nil,
                              message: "verifier '\(verifier.address.name)' has a judge_backend, but neither its chain nor a search's critics use a judge")
        }
        guard let search = method.search else { return }
        let judges = judgeCritics
        let scores = judges || search.outcome == .verifiers
        if scores, verifiers.isEmpty {
            throw ConfigError(file: file, key: "verifiers", line: nil,
                              message: "'search' asks the verifier tier for its critics (outcome: verifiers, or a judge critic): at least one verifier is needed")
        }
        if judges, let verifier = verifiers.first(where: { $0.judgeBackend == nil }) {
            throw ConfigError(file: file, key: "verifiers", line: nil,
                              message: "verifier '\(verifier.address.name)' has no judge_backend, but the search's critics ask a judge (weights.process > 0 or value: judge)")
        }
        if let pool = search.rolloutPool {
            if !samplers.contains(where: { $0.pool == pool }) {
                throw ConfigError(file: file, key: "method.search.rollout_pool", line: nil,
                                  message: "no samplers entry is named '\(pool)' (pools: \(Set(samplers.map(\.pool)).sorted().joined(separator: ", ")))")
            }
            if !samplers.contains(where: { $0.pool != pool }) {
                throw ConfigError(file: file, key: "method.search.rollout_pool", line: nil,
                                  message: "every sampler is in pool '\(pool)': expansions need samplers outside it")
            }
        }
        if method.maxTokens < 1 || search.stepMaxTokens > method.maxTokens {
            throw ConfigError(file: file, key: "method.search.step_max_tokens", line: nil,
                              message: "must not exceed method.max_tokens (\(method.maxTokens)), got \(search.stepMaxTokens)")
        }
    }
}
