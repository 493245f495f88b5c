import Backends
import Foundation
import SelfImproveCore

extension ClusterConfig {
    /// Reads, overrides and validates a configuration file. Nothing is started.
    /// - Parameters:
    ///   - file: The YAML file. Relative paths inside it are relative to its folder.
    ///   - overrides: `key.path=value` settings (`--set`), applied in order.
    ///   - edits: Typed changes a program makes (a rounds phase), applied after the overrides.
    ///   - output: The output folder from `--output` (relative to the working directory);
    ///     replaces the file's `output`.
    /// - Throws: ``ConfigError`` naming the key and its line.
    public static func load(file: String, overrides: [String] = [], edits: [ConfigEdit] = [], output: String? = nil) throws(ConfigError) -> ClusterConfig {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ConfigError(file: file, key: "", line: nil, message: "cannot read the file (\((error as NSError).localizedDescription))")
        }
        var document = try ConfigDocument(text: text, file: file)
        for override in overrides { try document.apply(override: override) }
        try document.apply(edits)
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent()
        return try parse(document, baseFolder: folder, outputOverride: output)
    }

    /// Builds a configuration from a parsed document.
    /// - Parameter baseFolder: What relative paths in the document are relative to.
    public static func parse(_ document: ConfigDocument, baseFolder: URL, outputOverride: String? = nil) throws(ConfigError) -> ClusterConfig {
        let top = try document.top()
        func resolve(_ path: String) -> URL {
            if path == "~" || path.hasPrefix("~/") {
                return URL(fileURLWithPath: NSHomeDirectory()).appendingPathComponent(String(path.dropFirst(2))).standardizedFileURL
            }
            return path.hasPrefix("/") ? URL(fileURLWithPath: path) : baseFolder.appendingPathComponent(path).standardizedFileURL
        }
        let name = try top.optional("name")?.string() ?? "run"
        var output = try top.optional("output").map { v throws(ConfigError) in resolve(try v.string()) }
            ?? resolve("runs/\(name)")
        if let outputOverride {
            output = outputOverride.hasPrefix("/") ? URL(fileURLWithPath: outputOverride)
                : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(outputOverride).standardizedFileURL
        }
        let seedValue = top.optional("seed")
        let seed = try seedValue?.int() ?? 2026
        if seed < 0 { throw seedValue!.error("must not be negative") }

        let dataset = try parseDataset(try top.required("dataset").mapping(), resolve: resolve)
        let prompt = try parsePrompt(top.optional("prompt")?.mapping(), resolve: resolve)
        let method = try parseMethod(try top.optional("method")?.mapping())
        let coordinator = try parseCoordinator(top.optional("coordinator")?.mapping())
        let samplerList = try top.required("samplers")
        let samplers = try parseSamplers(samplerList, seed: UInt64(seed), resolve: resolve)
        let samplerEntries = try samplerList.list().count
        guard !samplers.isEmpty else { throw samplerList.error("at least one sampler is needed") }
        let verifiers = try top.optional("verifiers").map { v throws(ConfigError) in try parseVerifiers(v, seed: UInt64(seed), resolve: resolve) } ?? []
        let trainerMapping = try top.optional("trainer")?.mapping()
        let trainer = try parseTrainer(trainerMapping)
        let monitor = try parseMonitor(top.optional("monitor")?.mapping())
        let network = try parseNetwork(top.optional("network")?.mapping())
        let supervision = try parseSupervision(top.optional("supervision")?.mapping())
        let security = try parseSecurity(top.optional("security")?.mapping(), resolve: resolve)
        let rounds = try top.optional("rounds").map { v throws(ConfigError) in try parseRounds(try v.mapping(), method: method.name, resolve: resolve) }
        try top.finish()

        if method.vote == .weighted, verifiers.isEmpty {
            throw ConfigError(file: document.file, key: "method.vote", line: nil, message: "'weighted' needs at least one verifier under 'verifiers'")
        }
        try checkSearch(method: method, samplers: samplers, verifiers: verifiers, file: document.file)
        if method.name.needsVerifierLabels, verifiers.isEmpty {
            throw ConfigError(file: document.file, key: "method.name", line: nil, message: "'\(method.name)' needs at least one verifier under 'verifiers' (they label solutions right or wrong)")
        }
        if method.name != .lmsi, method.vote == .weighted {
            throw ConfigError(file: document.file, key: "method.vote", line: nil, message: "'weighted' applies to method 'lmsi' only")
        }
        if prompt.template == .raw, method.name != .lmsi {
            throw ConfigError(file: document.file, key: "prompt.template", line: nil, message: "'raw' applies to method 'lmsi' only")
        }
        if method.minPathScore > 0, verifiers.isEmpty {
            throw ConfigError(file: document.file, key: "method.min_path_score", line: nil, message: "needs at least one verifier under 'verifiers'")
        }
        let canonical = document.canonicalText()
        let config = ClusterConfig(
            name: name, output: output, seed: UInt64(seed), dataset: dataset, prompt: prompt, method: method,
            coordinator: coordinator, samplers: samplers, verifiers: verifiers, trainer: trainer, monitor: monitor,
            network: network, supervision: supervision, security: security, rounds: rounds, samplerEntries: samplerEntries,
            hash: String(stableHash(canonical), radix: 16), canonicalText: canonical)
        try config.checkAddresses(file: document.file)
        try config.checkRounds(file: document.file)
        return config
    }

    /// Unique names; no two nodes on the same fixed port of one host.
    private func checkAddresses(file: String) throws(ConfigError) {
        var names: Set<String> = []
        var ports: [Int: (host: String, name: String)] = [:]
        for (_, address) in nodes {
            guard names.insert(address.name).inserted else {
                throw ConfigError(file: file, key: "name", line: nil, message: "two nodes are named '\(address.name)'; names must be unique")
            }
            guard address.port != 0 else { continue }
            if let other = ports[address.port], other.host == address.host || other.host == "0.0.0.0" || address.host == "0.0.0.0" {
                throw ConfigError(file: file, key: "port", line: nil,
                                  message: "port clash: '\(other.name)' and '\(address.name)' both listen on \(address.host):\(address.port)")
            }
            ports[address.port] = (address.host, address.name)
        }
        // Metrics ports (port + k for node k) must not be a node's fixed port either.
        if let metrics = monitor.metrics, metrics.port != 0 {
            for (index, node) in nodes.enumerated() {
                let port = metrics.port(ofNode: index)
                if port > 65535 {
                    throw ConfigError(file: file, key: "monitor.metrics.port", line: nil,
                                      message: "\(metrics.port) + \(index) (node '\(node.address.name)') is above 65535")
                }
                if let other = ports[port] {
                    throw ConfigError(file: file, key: "monitor.metrics.port", line: nil,
                                      message: "port clash: '\(node.address.name)' would serve metrics on \(port), where '\(other.name)' listens")
                }
            }
        }
    }

    static func parseDataset(_ map: ConfigMapping, resolve: (String) -> URL) throws(ConfigError) -> DatasetSettings {
        let pathValue = try map.required("path")
        let path = resolve(try pathValue.string()).path
        guard FileManager.default.isReadableFile(atPath: path) else { throw pathValue.error("no readable file at \(path)") }
        let formatName = try map.optional("format")?.choice(["gsm8k", "multiple_choice", "inference", "generic"]) ?? "gsm8k"
        let format: DatasetFormat
        switch formatName {
        case "multiple_choice": format = .multipleChoice
        case "inference": format = .inference
        case "generic":
            let question = try map.optional("question_field")?.string() ?? "question"
            let answer = try map.optional("answer_field")?.string()
            let kind = try map.optional("answer_kind").map { v throws(ConfigError) in
                AnswerKind(rawValue: try v.choice(AnswerKind.allCases.map(\.rawValue)))!
            } ?? .text
            format = .generic(questionField: question, answerField: answer, kind: kind)
        default: format = .gsm8k
        }
        let limitValue = map.optional("limit")
        let limit = try limitValue?.int()
        if let limit, limit < 1 { throw limitValue!.error("must be at least 1 (leave it out to use every question)") }
        let skip = try (map.optional("on_bad_line")?.choice(["skip", "fail"]) ?? "skip") == "skip"
        try map.finish()
        return DatasetSettings(path: path, format: format, limit: limit, skipBadLines: skip)
    }

    private static func parsePrompt(_ map: ConfigMapping?, resolve: (String) -> URL) throws(ConfigError) -> PromptSettings {
        let value = map?.optional("exemplars")
        let source = try value?.string() ?? "builtin:arithmetic"
        let template = PromptTemplate(rawValue: try map?.optional("template")?.choice(PromptTemplate.allCases.map(\.rawValue))
            ?? PromptTemplate.fewShotChainOfThought.rawValue)!
        try map?.finish()
        if source == "builtin:arithmetic" { return PromptSettings(exemplars: ExemplarFile.arithmetic, source: source, template: template) }
        let path = resolve(source).path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw value!.error("no readable file at \(path)") }
        do {
            let exemplars = try ExemplarFile.decode(text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init), source: path)
            return PromptSettings(exemplars: exemplars, source: path, template: template)
        } catch {
            throw value!.error("\(error)")
        }
    }

    private static func parseMethod(_ map: ConfigMapping?) throws(ConfigError) -> MethodSettings {
        let chosen = try map?.optional("name")?.choice(MethodName.allCases.map(\.rawValue))
        let name = chosen.flatMap(MethodName.init(rawValue:)) ?? .lmsi
        let mValue = map?.optional("m")
        let defaultM = switch name {
        case .lmsi: 32
        case .refine: 10
        case .verifyRefine: 1
        case .search: 16
        }
        let m = try mValue?.int() ?? defaultM
        if name == .verifyRefine, m != 1 { throw mValue!.error("must be 1 for verify_refine (it answers once, then refines)") }
        if m < 1 { throw mValue!.error("must be at least 1, got \(m)") }
        let pprValue = map?.optional("paths_per_request")
        let ppr = try pprValue?.int() ?? m
        if ppr < 1 || ppr > m { throw pprValue!.error("must be between 1 and m (\(m)), got \(ppr)") }
        let temperatureValue = map?.optional("temperature")
        let temperature = try temperatureValue?.double() ?? 0.7
        if temperature < 0 || temperature > 5 { throw temperatureValue!.error("must be between 0 and 5, got \(temperature)") }
        let topPValue = map?.optional("top_p")
        let topP = try topPValue?.double() ?? 1
        if topP <= 0 || topP > 1 { throw topPValue!.error("must be in (0, 1], got \(topP)") }
        let maxTokensValue = map?.optional("max_tokens")
        let maxTokens = try maxTokensValue?.int() ?? 256
        if maxTokens < 1 { throw maxTokensValue!.error("must be at least 1, got \(maxTokens)") }
        var stop = PromptBuilder.stopSequences
        if let stopValue = map?.optional("stop") {
            stop = []
            for item in try stopValue.list() { stop.append(try item.string()) }
        }
        let vote = VoteRule(rawValue: try map?.optional("vote")?.choice(["majority", "weighted"]) ?? "majority")!
        let confidenceValue = map?.optional("min_confidence")
        let minConfidence = try confidenceValue?.double()
        if let minConfidence, minConfidence < 0 || minConfidence > 1 { throw confidenceValue!.error("must be between 0 and 1, got \(minConfidence)") }
        let scoreValue = map?.optional("min_path_score")
        let minPathScore = try scoreValue?.double() ?? 0
        if minPathScore < 0 || minPathScore > 1 { throw scoreValue!.error("must be between 0 and 1, got \(minPathScore)") }
        var refine: RefineSettings?
        if name == .refine || name == .verifyRefine {
            let other = name == .refine ? RefineSettings.inferenceOnly : RefineSettings.collectOnly
            for key in other {
                if let value = map?.optional(key) { throw value.error("applies to method '\(name == .refine ? MethodName.verifyRefine : .refine)' only") }
            }
            refine = try parseRefine(map)
            if name == .verifyRefine {
                // Greedy by default at inference: one answer, one critique, one refinement.
                if map?.optional("critique_temperature") == nil { refine?.critiqueTemperature = 0 }
                if map?.optional("refinement_temperature") == nil { refine?.refinementTemperature = 0 }
            }
        } else {
            for key in RefineSettings.keys { if let value = map?.optional(key) { throw value.error("applies to methods 'refine' and 'verify_refine' only") } }
        }
        var search: SearchSettings?
        if let searchValue = map?.optional("search") {
            if name != .search { throw searchValue.error("applies to method 'search' only") }
            search = try parseSearch(try searchValue.mapping())
        } else if name == .search {
            search = SearchSettings()
        }
        try map?.finish()
        return MethodSettings(name: name, m: m, pathsPerRequest: ppr, temperature: temperature, topP: topP, maxTokens: maxTokens,
                              stop: stop, vote: vote, minConfidence: minConfidence, minPathScore: minPathScore, refine: refine, search: search)
    }

    /// SCORE's settings under `method` (``RefineSettings``).
    private static func parseRefine(_ map: ConfigMapping?) throws(ConfigError) -> RefineSettings {
        var settings = RefineSettings()
        func probability(_ key: String, _ current: Double) throws(ConfigError) -> Double {
            guard let value = map?.optional(key) else { return current }
            let number = try value.double()
            if number < 0 || number > 1 { throw value.error("must be between 0 and 1, got \(number)") }
            return number
        }
        func temperature(_ key: String, _ current: Double) throws(ConfigError) -> Double {
            guard let value = map?.optional(key) else { return current }
            let number = try value.double()
            if number < 0 || number > 5 { throw value.error("must be between 0 and 5, got \(number)") }
            return number
        }
        func count(_ key: String, _ current: Int, minimum: Int) throws(ConfigError) -> Int {
            guard let value = map?.optional(key) else { return current }
            let number = try value.int()
            if number < minimum { throw value.error("must be at least \(minimum), got \(number)") }
            return number
        }
        settings.rightAt = try probability("right_at", settings.rightAt)
        settings.maxCritiques = try count("max_critiques", settings.maxCritiques, minimum: 0)
        settings.critiqueTemperature = try temperature("critique_temperature", settings.critiqueTemperature)
        settings.critiqueMaxTokens = try count("critique_max_tokens", settings.critiqueMaxTokens, minimum: 1)
        settings.refinementTemperature = try temperature("refinement_temperature", settings.refinementTemperature)
        if let value = map?.optional("rebalance") { settings.rebalance = try value.bool() }
        settings.threshold = try probability("threshold", settings.threshold)
        return settings
    }

    private static func parseAddress(_ map: ConfigMapping?, defaultName: String) throws(ConfigError) -> NodeAddress {
        var address = NodeAddress(name: try map?.optional("name")?.string() ?? defaultName)
        if address.name.isEmpty || address.name.contains(where: { $0 == " " || $0 == "/" }) {
            throw map!.optional("name")!.error("must be a non-empty word without spaces or slashes")
        }
        if let host = map?.optional("host") { address.host = try host.string() }
        if let portValue = map?.optional("port") {
            address.port = try portValue.int()
            if !(0 ... 65535).contains(address.port) { throw portValue.error("must be between 0 (any free port) and 65535, got \(address.port)") }
        }
        if let advertise = map?.optional("advertise") {
            address.advertise = try advertise.string()
            if !address.advertise!.contains("://") { throw advertise.error("must be a ZeroMQ endpoint such as tcp://10.0.0.5:7400") }
        }
        return address
    }

    private static func parseCoordinator(_ map: ConfigMapping?) throws(ConfigError) -> CoordinatorSettings {
        let address = try parseAddress(map, defaultName: "coordinator")
        let leaseValue = map?.optional("lease_timeout")
        let lease = try leaseValue?.duration() ?? .seconds(30)
        if lease < .milliseconds(100) { throw leaseValue!.error("must be at least 100ms") }
        func positive(_ key: String, _ fallback: Int) throws(ConfigError) -> Int {
            guard let value = map?.optional(key) else { return fallback }
            let number = try value.int()
            if number < 1 { throw value.error("must be at least 1, got \(number)") }
            return number
        }
        let attempts = try positive("max_attempts", 3)
        let open = try positive("open_questions", 256)
        let window = try positive("trainer_window", 256)
        let batch = try positive("trainer_batch", 128)
        let stallValue = map?.optional("stall_timeout")
        let stall = try stallValue?.duration() ?? .seconds(300)
        if stall < .seconds(1) { throw stallValue!.error("must be at least 1s") }
        let compactValue = map?.optional("journal_compact_bytes")
        let compact = try compactValue?.int() ?? 64 << 20
        if compact < 4096 { throw compactValue!.error("must be at least 4096, got \(compact)") }
        try map?.finish()
        return CoordinatorSettings(address: address, leaseTimeout: lease, maxAttempts: attempts, openQuestions: open,
                                   trainerWindow: window, trainerBatch: batch, stallTimeout: stall, journalCompactBytes: compact)
    }

    /// Expands `replicas` into numbered nodes: `name` with `replicas: 2` gives `name-1`, `name-2`.
    private static func replicated(_ map: ConfigMapping, _ address: NodeAddress) throws(ConfigError) -> [NodeAddress] {
        guard let value = map.optional("replicas") else { return [address] }
        let count = try value.int()
        if count < 1 { throw value.error("must be at least 1, got \(count)") }
        if count > 1, address.port != 0 { throw value.error("replicas need 'port: 0' (each replica picks a free port)") }
        guard count > 1 else { return [address] }
        return (1 ... count).map { index in
            var copy = address
            copy.name = "\(address.name)-\(index)"
            return copy
        }
    }

    private static func parseSamplers(_ value: ConfigValue, seed: UInt64, resolve: (String) -> URL) throws(ConfigError) -> [SamplerSettings] {
        var samplers: [SamplerSettings] = []
        for (position, item) in try value.list().enumerated() {
            let map = try item.mapping()
            let address = try parseAddress(map, defaultName: "sampler-\(position + 1)")
            let capacityValue = map.optional("capacity")
            let capacity = try capacityValue?.int() ?? 8
            if capacity < 1 { throw capacityValue!.error("must be at least 1, got \(capacity)") }
            let backend = try parseBackend(try map.required("backend").mapping(), seed: seed, resolve: resolve)
            for replica in try replicated(map, address) {
                samplers.append(SamplerSettings(address: replica, capacity: capacity, backend: backend, pool: address.name))
            }
            try map.finish()
        }
        return samplers
    }

    private static func parseBackend(_ map: ConfigMapping, seed: UInt64, resolve: (String) -> URL) throws(ConfigError) -> BackendSettings {
        switch try map.required("kind").choice(["synthetic", "openai", "llama-server"]) {
        case "openai": return try parseOpenAIBackend(map)
        case "llama-server": return try parseLlamaServerBackend(map, resolve: resolve)
        default: return try parseSyntheticBackend(map, seed: seed, resolve: resolve)
        }
    }

    private static func parseSyntheticBackend(_ map: ConfigMapping, seed: UInt64, resolve: (String) -> URL) throws(ConfigError) -> BackendSettings {
        var synthetic = SyntheticBackend.Configuration()
        synthetic.seed = seed
        func rate(_ key: String, _ fallback: Double) throws(ConfigError) -> Double {
            guard let value = map.optional(key) else { return fallback }
            let number = try value.double()
            if number < 0 || number > 1 { throw value.error("must be between 0 and 1, got \(number)") }
            return number
        }
        synthetic.stepErrorRate = try rate("step_error_rate", synthetic.stepErrorRate)
        synthetic.noAnswerRate = try rate("no_answer_rate", synthetic.noAnswerRate)
        synthetic.critiqueErrorRate = try rate("critique_error_rate", synthetic.critiqueErrorRate)
        synthetic.refinementStepErrorRate = try rate("refinement_step_error_rate", synthetic.refinementStepErrorRate)
        synthetic.judgeErrorRate = try rate("judge_error_rate", synthetic.judgeErrorRate)
        synthetic.timeToFirstToken = try map.optional("time_to_first_token")?.duration() ?? .zero
        if let value = map.optional("tokens_per_second") {
            synthetic.tokensPerSecond = try value.double()
            if synthetic.tokensPerSecond < 0 { throw value.error("must not be negative (0 means instant)") }
        }
        if let value = map.optional("concurrency") {
            synthetic.concurrency = try value.int()
            if synthetic.concurrency < 1 { throw value.error("must be at least 1, got \(synthetic.concurrency)") }
        }
        if let value = map.optional("model_version") { synthetic.modelVersion = try value.string() }
        if let value = map.optional("model") {
            // A trainable simulated model (a training round's output): its error rate and its
            // content fingerprint as the model version replace the settings above.
            let path = resolve(try value.string()).path
            do {
                let model = try SyntheticModel.read(path: path)
                synthetic.stepErrorRate = model.stepErrorRate
                synthetic.modelVersion = try ModelFileFingerprint.of(path: path)
                synthetic.modelPath = path
            } catch {
                throw value.error("\(error)")
            }
        }
        try map.finish()
        return .synthetic(synthetic)
    }

    private static func parseOpenAIBackend(_ map: ConfigMapping) throws(ConfigError) -> BackendSettings {
        let urlValue = try map.required("url")
        let url = try urlValue.string()
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw urlValue.error("must be an http:// or https:// address, got '\(url)'")
        }
        var openAI = OpenAICompatibleBackend.Configuration(baseURL: url)
        try parseHTTPOptions(map, api: &openAI.api, timeout: &openAI.requestTimeout, retry: &openAI.retry,
                             logProbabilities: &openAI.logProbabilities)
        openAI.model = try map.optional("model")?.string()
        if let value = map.optional("api_key_env") {
            let name = try value.string()
            if name.isEmpty || name.contains(where: { !($0.isLetter || $0.isNumber || $0 == "_") }) {
                throw value.error("must be the name of an environment variable, got '\(name)'")
            }
            openAI.apiKeyEnvironmentVariable = name
        }
        if let value = map.optional("concurrency") {
            openAI.concurrency = try value.int()
            if openAI.concurrency < 1 { throw value.error("must be at least 1, got \(openAI.concurrency)") }
        }
        if let value = map.optional("max_choices") {
            let most = try value.int()
            if most < 1 { throw value.error("must be at least 1, got \(most)") }
            openAI.maxChoicesPerRequest = most
        }
        openAI.modelVersion = try map.optional("model_version")?.string()
        try map.finish()
        return .openAI(openAI)
    }

    private static func parseLlamaServerBackend(_ map: ConfigMapping, resolve: (String) -> URL) throws(ConfigError) -> BackendSettings {
        let command = try map.optional("server").map { v throws(ConfigError) in resolve(try v.string()).path }
            ?? PackagedModel.serverCommand
        let model = try map.optional("model").map { v throws(ConfigError) in resolve(try v.string()).path }
            ?? PackagedModel.modelPath
        var server = ManagedLlamaServer.Configuration(command: command, modelPath: model)
        func positive(_ key: String, _ fallback: Int) throws(ConfigError) -> Int {
            guard let value = map.optional(key) else { return fallback }
            let number = try value.int()
            if number < 1 { throw value.error("must be at least 1, got \(number)") }
            return number
        }
        server.slots = try positive("slots", server.slots)
        server.contextPerSlot = try positive("context", server.contextPerSlot)
        server.threads = try positive("threads", server.threads)
        if let value = map.optional("max_restarts") {
            server.maxRestarts = try value.int()
            if server.maxRestarts < 0 { throw value.error("must not be negative") }
        }
        if let value = map.optional("startup_timeout") {
            server.startupTimeout = try value.duration()
            if server.startupTimeout < .seconds(1) { throw value.error("must be at least 1s") }
        }
        if let value = map.optional("hang_timeout") {
            server.hangTimeout = try value.duration()
            if server.hangTimeout < .seconds(1) { throw value.error("must be at least 1s") }
            server.healthInterval = min(server.healthInterval, server.hangTimeout / 3)
        }
        if let value = map.optional("extra_args") {
            server.extraArguments = try value.list().map { v throws(ConfigError) in try v.string() }
        }
        var backend = LlamaServerBackend.Configuration(server: server)
        try parseHTTPOptions(map, api: &backend.api, timeout: &backend.requestTimeout, retry: &backend.retry,
                             logProbabilities: &backend.logProbabilities)
        try map.finish()
        return .llamaServer(backend)
    }

    /// The options every HTTP backend shares: `api`, `request_timeout`, `retries`, `logprobs`.
    private static func parseHTTPOptions(_ map: ConfigMapping, api: inout OpenAIWire.API, timeout: inout Duration,
                                         retry: inout RetryPolicy, logProbabilities: inout Bool) throws(ConfigError)
    {
        if let value = map.optional("api") {
            api = OpenAIWire.API(rawValue: try value.choice(OpenAIWire.API.allCases.map(\.rawValue)))!
        }
        if let value = map.optional("request_timeout") {
            timeout = try value.duration()
            if timeout < .milliseconds(100) { throw value.error("must be at least 100ms") }
        }
        if let value = map.optional("retries") {
            let retries = try value.int()
            if retries < 0 { throw value.error("must not be negative") }
            retry.maxAttempts = retries + 1
        }
        if let value = map.optional("logprobs") { logProbabilities = try value.bool() }
    }

    private static func parseVerifiers(_ value: ConfigValue, seed: UInt64, resolve: (String) -> URL) throws(ConfigError) -> [VerifierSettings] {
        var verifiers: [VerifierSettings] = []
        for (position, item) in try value.list().enumerated() {
            let map = try item.mapping()
            let address = try parseAddress(map, defaultName: "verifier-\(position + 1)")
            var chain: [(kind: VerifierKind, weight: Double)] = []
            if let chainValue = map.optional("chain") {
                for entry in try chainValue.list() {
                    if let entryMap = try? entry.mapping() {
                        let kind = VerifierKind(rawValue: try entryMap.required("kind").choice(VerifierKind.allCases.map(\.rawValue)))!
                        let weightValue = entryMap.optional("weight")
                        let weight = try weightValue?.double() ?? 1
                        if weight < 0 { throw weightValue!.error("must not be negative") }
                        try entryMap.finish()
                        chain.append((kind, weight))
                    } else {
                        chain.append((VerifierKind(rawValue: try entry.choice(VerifierKind.allCases.map(\.rawValue)))!, 1))
                    }
                }
                if chain.isEmpty { throw chainValue.error("must name at least one verifier") }
            } else if map.optional("command") == nil {
                chain = VerifierKind.defaultChain.map { ($0, 1) }
            }
            let command = try map.optional("command").map { v throws(ConfigError) in try parseCommand(v, resolve: resolve) }
            var judgeBackend: BackendSettings?
            if let judgeValue = map.optional("judge_backend") {
                if command != nil { throw judgeValue.error("a verifier run as a 'command' brings its own scoring; judge_backend is for the Swift verifier") }
                let judgeMap = try judgeValue.mapping()
                judgeBackend = try parseBackend(judgeMap, seed: seed, resolve: resolve)
                try judgeMap.finish()
            }
            if command == nil, chain.contains(where: { $0.kind == .judge }), judgeBackend == nil {
                throw (map.optional("chain") ?? item).error("has a judge but the verifier has no judge_backend (the model it asks)")
            }
            for replica in try replicated(map, address) {
                var verifier = VerifierSettings(address: replica, chain: chain, judgeBackend: judgeBackend)
                verifier.entry = address.name
                verifier.command = command
                verifiers.append(verifier)
            }
            try map.finish()
        }
        return verifiers
    }

    /// A verifier's `command`: the program and its own arguments, as a list (or the program
    /// alone, as a string). A program path with a slash is relative to the config's folder; a
    /// bare name is looked up on `PATH` when the node starts.
    private static func parseCommand(_ value: ConfigValue, resolve: (String) -> URL) throws(ConfigError) -> [String] {
        var words: [String] = []
        for item in try value.list() { words.append(try item.string()) }
        guard let program = words.first, !program.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw value.error("must name a program, e.g. [../.build/c-verifier/selfimprove-c-verifier]")
        }
        if program.contains("/") { words[0] = resolve(program).path }
        return words
    }

    private static func parseTrainer(_ map: ConfigMapping?) throws(ConfigError) -> TrainerSettings {
        let address = try parseAddress(map, defaultName: "trainer")
        var formats = TrainingExample.Format.allCases
        if let value = map?.optional("formats") {
            formats = []
            for item in try value.list() {
                formats.append(TrainingExample.Format(rawValue: try item.choice(TrainingExample.Format.allCases.map(\.rawValue)))!)
            }
        }
        try map?.finish()
        return TrainerSettings(address: address, formats: formats)
    }

    private static func parseMonitor(_ map: ConfigMapping?) throws(ConfigError) -> MonitorSettings {
        let intervalValue = map?.optional("interval")
        let interval = try intervalValue?.duration() ?? .seconds(5)
        if interval < .milliseconds(100) { throw intervalValue!.error("must be at least 100ms") }
        let format = LogFormat(rawValue: try map?.optional("format")?.choice(["text", "json"]) ?? "text")!
        var metrics: MetricsSettings?
        if let value = map?.optional("metrics") {
            let metricsMap = try value.mapping()
            let host = try metricsMap.optional("host")?.string() ?? "127.0.0.1"
            let portValue = try metricsMap.required("port")
            let port = try portValue.int()
            if port < 0 || port > 65535 { throw portValue.error("must be between 0 and 65535, got \(port)") }
            try metricsMap.finish()
            metrics = MetricsSettings(host: host, port: port)
        }
        try map?.finish()
        return MonitorSettings(interval: interval, format: format, metrics: metrics)
    }

    private static func parseNetwork(_ map: ConfigMapping?) throws(ConfigError) -> NetworkSettings {
        let heartbeat = try map?.optional("heartbeat_interval")?.duration() ?? .milliseconds(250)
        let failureValue = map?.optional("failure_timeout")
        let failure = try failureValue?.duration() ?? .seconds(2)
        if failure <= heartbeat * 2 { throw (failureValue ?? map!.optional("heartbeat_interval")!).error("failure_timeout must exceed two heartbeat intervals") }
        let callValue = map?.optional("call_timeout")
        let call = try callValue?.duration() ?? .seconds(30)
        if call < .milliseconds(100) { throw callValue!.error("must be at least 100ms") }
        try map?.finish()
        if heartbeat < .milliseconds(10) { throw ConfigError(file: "", key: "network.heartbeat_interval", line: nil, message: "must be at least 10ms") }
        return NetworkSettings(heartbeatInterval: heartbeat, failureTimeout: failure, callTimeout: call)
    }

    private static func parseSecurity(_ map: ConfigMapping?, resolve: (String) -> URL) throws(ConfigError) -> SecuritySettings {
        let curveValue = map?.optional("curve")
        let curve = try curveValue?.bool() ?? false
        let keysValue = map?.optional("keys")
        let keys = try keysValue.map { v throws(ConfigError) in resolve(try v.string()) }
        let plaintextNetwork = try map?.optional("plaintext_network")?.bool() ?? false
        try map?.finish()
        if curve, keys == nil {
            throw curveValue!.error("'curve: true' needs 'keys': the folder of key files (`selfimprove keys generate --config FILE` writes them)")
        }
        var settings = SecuritySettings(curve: curve, keys: keys ?? resolve("keys"))
        settings.plaintextNetwork = plaintextNetwork
        return settings
    }

    private static func parseSupervision(_ map: ConfigMapping?) throws(ConfigError) -> SupervisionSettings {
        let restartsValue = map?.optional("max_restarts")
        let restarts = try restartsValue?.int() ?? 3
        if restarts < 0 { throw restartsValue!.error("must not be negative") }
        let grace = try map?.optional("stop_grace")?.duration() ?? .seconds(10)
        try map?.finish()
        return SupervisionSettings(maxRestarts: restarts, stopGrace: grace)
    }
}
