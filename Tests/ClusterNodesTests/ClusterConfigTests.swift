import Backends
import ClusterNodes
import Foundation
import SelfImproveCore
import TestFiles
import Testing

@Suite("Cluster config")
struct ClusterConfigTests {
    static let clusterFolder = TestFiles.cluster

    /// The samplers section of ``validText(extra:)``.
    static let samplersSection = """
        samplers:
          - name: sampler
            replicas: 2
            capacity: 4
            backend:
              kind: synthetic
        """

    /// A valid config, with the data set path made absolute so it can live anywhere.
    static func validText(extra: String = "") -> String {
        let dataset = clusterFolder.appendingPathComponent("data/arithmetic-200.jsonl").path
        return """
        name: test
        dataset:
          path: \(dataset)
        method:
          m: 8
        \(samplersSection)
        verifiers:
          - name: verifier
        trainer:
          name: trainer
        \(extra)
        """
    }

    private func load(_ text: String, overrides: [String] = []) throws -> ClusterConfig {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString).yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        return try ClusterConfig.load(file: url.path, overrides: overrides)
    }

    private func configError(_ text: String, overrides: [String] = []) -> ConfigError? {
        do {
            _ = try load(text, overrides: overrides)
            return nil
        } catch let error as ConfigError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test(arguments: ["local.yaml", "synthetic.yaml", "example.yaml", "refine-synthetic.yaml", "refine.yaml", "search.yaml", "search-synthetic.yaml",
                     "c-verifier.yaml"])
    func shippedConfigsAreValid(_ name: String) throws {
        let config = try ClusterConfig.load(file: Self.clusterFolder.appendingPathComponent(name).path)
        #expect(config.samplers.count >= 2)
        #expect(config.verifiers.count >= 1)
        #expect(config.nodes.first?.role == .coordinator)
        #expect(FileManager.default.fileExists(atPath: config.dataset.path))
    }

    @Test func localClusterHasTheIssuesShape() throws {
        let config = try ClusterConfig.load(file: Self.clusterFolder.appendingPathComponent("local.yaml").path)
        #expect(config.method.m == 8)
        #expect(config.samplers.map(\.address.name) == ["sampler-1", "sampler-2"])
        #expect(config.verifiers.count == 1)
        #expect(config.nodes.count == 5)
        guard case let .llamaServer(backend) = config.samplers[0].backend else {
            Issue.record("local.yaml's samplers should run the managed llama-server")
            return
        }
        #expect(backend.server.modelPath.hasSuffix("/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
        #expect(backend.server.command.hasSuffix("/llama-venv/bin/llama-cpp-server"))
    }

    @Test(arguments: [
        ("samplers.0.backend.kind=openai", "url"),
        ("samplers.0.backend.kind=vllm", "llama-server"),
    ])
    func modelServerBackendsAreValidated(override: String, message: String) {
        let error = configError(Self.validText(), overrides: [override])
        #expect(error?.description.contains(message) == true, "\(String(describing: error))")
    }

    @Test func refineIsReadWithItsSettingsAndItsOwnDefaultM() throws {
        let config = try load(Self.validText().replacingOccurrences(of: "  m: 8\n", with: ""),
                              overrides: ["method.name=refine", "method.right_at=0.7", "method.rebalance=true", "method.critique_max_tokens=300"])
        #expect(config.method.name == .refine)
        #expect(config.method.m == 10)
        let refine = try #require(config.method.refine)
        #expect(refine.rightAt == 0.7 && refine.rebalance && refine.critiqueMaxTokens == 300 && refine.maxCritiques == 10)
        let lmsi = try load(Self.validText().replacingOccurrences(of: "  m: 8\n", with: ""))
        #expect(lmsi.method.m == 32 && lmsi.method.refine == nil)
    }

    @Test(arguments: [
        (["method.name=refine", "method.right_at=1.5"], "method.right_at"),
        (["method.rebalance=true"], "applies to methods 'refine' and 'verify_refine' only"),
        (["method.name=refine", "method.threshold=0.3"], "applies to method 'verify_refine' only"),
        (["method.name=verify_refine", "method.m=1", "method.rebalance=true"], "applies to method 'refine' only"),
        (["method.name=verify_refine", "method.m=4"], "must be 1 for verify_refine"),
        (["method.name=refine", "method.vote=weighted"], "applies to method 'lmsi' only"),
        (["method.name=refine", "method.max_critiques=-1"], "must be at least 0"),
    ])
    func refineSettingsAreValidated(overrides: [String], message: String) {
        let error = configError(Self.validText(), overrides: overrides)
        #expect(error?.description.contains(message) == true, "\(String(describing: error))")
    }

    @Test func aJudgeNeedsItsBackendAndTheBackendItsJudge() throws {
        let judged = Self.validText().replacingOccurrences(of: "verifiers:\n  - name: verifier\n",
                                                           with: "verifiers:\n  - name: verifier\n    chain: [judge, arithmetic_steps]\n    judge_backend: {kind: synthetic, judge_error_rate: 0.25}\n")
        let config = try load(judged)
        guard case let .synthetic(judge)? = config.verifiers.first?.judgeBackend else {
            Issue.record("no synthetic judge backend: \(String(describing: config.verifiers.first?.judgeBackend))")
            return
        }
        #expect(judge.judgeErrorRate == 0.25)
        #expect(config.verifiers.first?.chain.map(\.kind) == [.judge, .arithmeticSteps])
        let missing = configError(Self.validText().replacingOccurrences(of: "verifiers:\n  - name: verifier\n",
                                                                        with: "verifiers:\n  - name: verifier\n    chain: [judge]\n"))
        #expect(missing?.description.contains("no judge_backend") == true, "\(String(describing: missing))")
        let unused = configError(Self.validText().replacingOccurrences(of: "verifiers:\n  - name: verifier\n",
                                                                       with: "verifiers:\n  - name: verifier\n    judge_backend: {kind: synthetic}\n"))
        #expect(unused?.description.contains("neither its chain nor a search's critics use a judge") == true, "\(String(describing: unused))")
    }

    @Test func aCommandVerifierIsReadAndGetsTheNodeOptions() throws {
        let text = Self.validText(extra: "security: {curve: true, keys: /tmp/keys}\nnetwork: {heartbeat_interval: 100ms, failure_timeout: 1500ms}")
            .replacingOccurrences(of: "verifiers:\n  - name: verifier\n",
                                  with: "verifiers:\n  - name: verifier\n    port: 7450\n    command: [bin/c-verifier, --log-level, debug]\n")
        let config = try load(text)
        let verifier = try #require(config.verifiers.first)
        // The program is relative to the config's folder; its own arguments stay as written.
        let program = FileManager.default.temporaryDirectory.appendingPathComponent("bin/c-verifier").standardizedFileURL.path
        #expect(verifier.command == [program, "--log-level", "debug"])
        #expect(verifier.chain.isEmpty, "a command's chain is only what it declares")
        let arguments = CommandNodeArguments.make(config: config, settings: verifier, name: "verifier", coordinatorEndpoint: "tcp://127.0.0.1:7400")
        #expect(arguments == [program, "--log-level", "debug", "--name", "verifier", "--bind", "tcp://127.0.0.1:7450", "--coordinator", "tcp://127.0.0.1:7400",
                              "--heartbeat-ms", "100", "--failure-timeout-ms", "1500", "--stop-on-stdin-eof",
                              "--curve-keys", "/tmp/keys", "--curve-key-name", "verifier", "--curve-domain", "selfimprove/test",
                              "--curve-allow", "coordinator,sampler-1,sampler-2,verifier,trainer"])
        // An instance name, another port and an advertised endpoint (Slurm, Kubernetes).
        let moved = CommandNodeArguments.make(config: config, settings: verifier, name: "verifier-0", coordinatorEndpoint: "tcp://10.0.0.1:7400",
                                              port: 0, advertise: "tcp://10.0.0.7:7450")
        #expect(moved.contains("verifier-0") && moved.contains("tcp://127.0.0.1:*") && moved.suffix(from: moved.firstIndex(of: "--advertise")!).dropFirst().first == "tcp://10.0.0.7:7450")
        // A bare program name is left for PATH; a command cannot have a judge backend.
        #expect(try load(text.replacingOccurrences(of: "[bin/c-verifier, --log-level, debug]", with: "c-verifier")).verifiers.first?.command == ["c-verifier"])
        let judged = configError(text.replacingOccurrences(of: "    command:", with: "    judge_backend: {kind: synthetic}\n    command:"))
        #expect(judged?.description.contains("brings its own scoring") == true, "\(String(describing: judged))")
        let empty = configError(text.replacingOccurrences(of: "[bin/c-verifier, --log-level, debug]", with: "[\"\"]"))
        #expect(empty?.description.contains("must name a program") == true, "\(String(describing: empty))")
    }

    @Test func metricsPortsFollowTheNodesAndMustNotClash() throws {
        let config = try load(Self.validText(), overrides: ["monitor.metrics={host: 0.0.0.0, port: 9400}"])
        let metrics = try #require(config.monitor.metrics)
        #expect(metrics.host == "0.0.0.0")
        #expect(config.nodes.indices.map { metrics.port(ofNode: $0) } == Array(9400 ..< 9400 + config.nodes.count))
        #expect(try load(Self.validText()).monitor.metrics == nil, "off unless set")
        #expect(try load(Self.validText(), overrides: ["monitor.metrics.port=0"]).monitor.metrics?.port(ofNode: 3) == 0)
        let clash = configError(Self.validText(), overrides: ["monitor.metrics.port=7401", "coordinator.port=7402"])
        #expect(clash?.description.contains("would serve metrics on 7402") == true, "\(String(describing: clash))")
        let high = configError(Self.validText(), overrides: ["monitor.metrics.port=65534"])
        #expect(high?.description.contains("above 65535") == true, "\(String(describing: high))")
        let missing = configError(Self.validText(), overrides: ["monitor.metrics={host: 127.0.0.1}"])
        #expect(missing?.description.contains("monitor.metrics.port") == true, "\(String(describing: missing))")
    }

    @Test func searchIsReadWithEveryKeyAndItsDefaults() throws {
        let plain = try load(Self.validText(), overrides: ["method.name=search", "method.m=16"])
        #expect(plain.method.search == SearchSettings())
        let text = Self.validText().replacingOccurrences(of: "method:\n  m: 8\n", with: """
            method:
              name: search
              search:
                exploration: 1.5
                simulations: 30
                token_budget: 5000
                max_depth: 6
                branching: {root_min: 3, root_max: 12, below_min: 1, below_max: 5, alpha: 2}
                merge_distance: 20
                step_stop: ["\\n"]
                step_max_tokens: 64
                expansion_temperature: 0.9
                greedy_first: false
                rollouts: 2
                rollout_temperature: 0.8
                rollout_max_tokens: 100
                rollout_pool: fast
                value: judge
                outcome: majority
                weights: {value: 2, process: 0.5, outcome: 0}
                keep_threshold: 0.9
                label_threshold: 0.4
                pair_margin: 0.3

            """).replacingOccurrences(of: Self.samplersSection, with: Self.samplersSection + "\n  - {name: fast, backend: {kind: synthetic}}")
            .replacingOccurrences(of: "verifiers:\n  - name: verifier\n", with: "verifiers:\n  - name: verifier\n    judge_backend: {kind: synthetic}\n")
        let config = try load(text)
        let search = try #require(config.method.search)
        #expect(config.method.m == 16, "search's own default m (the most paths one request asks for)")
        #expect(search.exploration == 1.5 && search.simulations == 30 && search.tokenBudget == 5000 && search.maxDepth == 6)
        #expect(search.branching == Branching(rootMinimum: 3, rootMaximum: 12, belowMinimum: 1, belowMaximum: 5, alpha: 2))
        #expect(search.mergeDistance == 20 && search.stepStop == ["\n"] && search.stepMaxTokens == 64 && search.expansionTemperature == 0.9)
        #expect(!search.greedyFirst && search.rollouts == 2 && search.rolloutTemperature == 0.8 && search.rolloutMaxTokens == 100)
        #expect(search.rolloutPool == "fast" && search.value == .judge && search.outcome == .majority)
        #expect(search.weights == SearchSettings.Weights(value: 2, process: 0.5, outcome: 0))
        #expect(search.keepThreshold == 0.9 && search.labelThreshold == 0.4 && search.pairMargin == 0.3)
        #expect(config.samplers.map(\.pool) == ["sampler", "sampler", "fast"])
    }

    @Test(arguments: [
        (["method.search.simulations=5"], "applies to method 'search' only"),
        (["method.name=search", "method.search.simulations=0"], "must be at least 1"),
        (["method.name=search", "method.search.weights.process=1"], "has no judge_backend"),
        (["method.name=search", "method.search.value=judge"], "has no judge_backend"),
        (["method.name=search", "method.search.rollout_pool=fast"], "no samplers entry is named 'fast'"),
        (["method.name=search", "method.search.rollout_pool=sampler"], "every sampler is in pool 'sampler'"),
        (["method.name=search", "method.search.weights={value: 0, process: 0, outcome: 0}"], "at least one weight"),
        (["method.name=search", "method.search.outcome=best"], "method.search.outcome"),
        (["method.name=search", "method.search.step_stop=[]"], "at least one non-empty stop string"),
        (["method.name=search", "method.max_tokens=32"], "must not exceed method.max_tokens"),
        (["method.name=search", "method.search.branching.root_max=1", "method.search.branching.root_min=2"], "must be at least 2"),
        (["method.name=search", "method.search.depth=3"], "unknown key"),
    ])
    func searchSettingsAreValidated(overrides: [String], message: String) {
        let error = configError(Self.validText(), overrides: overrides)
        #expect(error?.description.contains(message) == true, "\(overrides): \(String(describing: error))")
    }

    @Test func aLabelFreeSearchNeedsNoVerifier() throws {
        let text = Self.validText().replacingOccurrences(of: "verifiers:\n  - name: verifier\n", with: "verifiers: []\n")
        let config = try load(text, overrides: ["method.name=search", "method.search.outcome=majority"])
        #expect(config.verifiers.isEmpty)
        let error = configError(text, overrides: ["method.name=search"])
        #expect(error?.description.contains("at least one verifier is needed") == true, "\(String(describing: error))")
    }

    @Test func refineRoundsTrainOnTheRefinersDataByDefaultAndVerifyRefineHasNoRounds() throws {
        let file = Self.clusterFolder.appendingPathComponent("rounds-synthetic.yaml").path
        let refine = try ClusterConfig.load(file: file, overrides: ["method.name=refine", "rounds.data="])
        #expect(refine.rounds?.data.formats == ["refine"])
        let lmsi = try ClusterConfig.load(file: file, overrides: ["rounds.data="])
        #expect(lmsi.rounds?.data.formats == ["cot_fewshot"])
        do {
            _ = try ClusterConfig.load(file: file, overrides: ["method.name=verify_refine", "method.m=1", "method.paths_per_request=1"])
            Issue.record("verify_refine with rounds was accepted")
        } catch {
            #expect("\(error)".contains("makes no training data"), "\(error)")
        }
    }

    @Test func theLoRAEngineHasATimeoutAndAMaximumLengthByDefault() throws {
        let file = Self.clusterFolder.appendingPathComponent("rounds.yaml").path
        let shipped = try ClusterConfig.load(file: file)
        guard case let .lora(defaults)? = shipped.rounds?.engine else { Issue.record("rounds.yaml does not train with lora"); return }
        #expect(defaults.timeout == .seconds(7200) && defaults.maxLength == 1024)
        let set = try ClusterConfig.load(file: file, overrides: ["rounds.engine.timeout=90m", "rounds.engine.max_length=512"])
        guard case let .lora(settings)? = set.rounds?.engine else { Issue.record("the engine changed kind"); return }
        #expect(settings.timeout == .seconds(5400) && settings.maxLength == 512)
        for (override, message) in [("rounds.engine.timeout=0s", "must be positive"), ("rounds.engine.max_length=4", "must be at least 16")] {
            do {
                _ = try ClusterConfig.load(file: file, overrides: [override])
                Issue.record("\(override) was accepted")
            } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
        }
    }

    @Test func refineNeedsVerifiersToLabelItsSolutions() {
        let text = Self.validText().replacingOccurrences(of: "verifiers:\n  - name: verifier\n", with: "verifiers: []\n")
        let error = configError(text, overrides: ["method.name=refine"])
        #expect(error?.description.contains("'refine' needs at least one verifier") == true, "\(String(describing: error))")
    }

    @Test func openAIAndLlamaServerOptionsAreRead() throws {
        let text = Self.validText().replacingOccurrences(of: Self.samplersSection, with: """
            samplers:
              - name: gpu
                backend: {kind: openai, url: "http://gpu-1:8000/v1", api: chat, model: m7, api_key_env: MY_KEY, concurrency: 3, max_choices: 2, retries: 5, request_timeout: 9s, logprobs: true}
              - name: local
                backend: {kind: llama-server, model: ~/m.gguf, slots: 6, context: 512, threads: 3, extra_args: [--flash-attn, "on"], max_restarts: 1}
            """)
        let config = try load(text)
        guard case let .openAI(openAI) = config.samplers[0].backend, case let .llamaServer(llama) = config.samplers[1].backend else {
            Issue.record("wrong backend kinds: \(config.samplers.map(\.backend))")
            return
        }
        #expect(openAI.baseURL == "http://gpu-1:8000/v1")
        #expect(openAI.api == .chat)
        #expect(openAI.model == "m7")
        #expect(openAI.apiKeyEnvironmentVariable == "MY_KEY")
        #expect(openAI.concurrency == 3)
        #expect(openAI.maxChoicesPerRequest == 2)
        #expect(openAI.retry.maxAttempts == 6)
        #expect(openAI.requestTimeout == .seconds(9))
        #expect(openAI.logProbabilities)
        #expect(llama.server.modelPath == NSHomeDirectory() + "/m.gguf")
        #expect(llama.server.slots == 6)
        #expect(llama.server.contextPerSlot == 512)
        #expect(llama.server.threads == 3)
        #expect(llama.server.extraArguments == ["--flash-attn", "on"])
        #expect(llama.server.maxRestarts == 1)

        let badURL = text.replacingOccurrences(of: "http://gpu-1:8000/v1", with: "gpu-1:8000")
        #expect(configError(badURL)?.description.contains("must be an http:// or https:// address") == true)
        let badKey = text.replacingOccurrences(of: "MY_KEY", with: "MY KEY")
        #expect(configError(badKey)?.description.contains("must be the name of an environment variable") == true)
        let badSlots = text.replacingOccurrences(of: "slots: 6", with: "slots: 0")
        #expect(configError(badSlots)?.description.contains("slots: must be at least 1") == true)
    }

    @Test func defaultsAndReplicas() throws {
        let config = try load(Self.validText())
        #expect(config.method.pathsPerRequest == 8)
        #expect(config.method.temperature == 0.7)
        #expect(config.method.vote == .majority)
        #expect(config.samplers.map(\.address.name) == ["sampler-1", "sampler-2"])
        #expect(config.trainer.formats == TrainingExample.Format.allCases)
        #expect(config.coordinator.address.port == 0)
    }

    @Test func overridesReplaceAnyKey() throws {
        let config = try load(Self.validText(), overrides: [
            "method.m=16", "method.temperature=1.2", "samplers.0.capacity=2", "coordinator.port=7455", "monitor.format=json",
        ])
        #expect(config.method.m == 16)
        #expect(config.method.pathsPerRequest == 16)
        #expect(config.method.temperature == 1.2)
        #expect(config.samplers.allSatisfy { $0.capacity == 2 })
        #expect(config.coordinator.address.port == 7455)
        #expect(config.monitor.format == .json)
        let plain = try load(Self.validText())
        #expect(config.hash != plain.hash)
    }

    @Test func unknownKeyNamesTheKeyAndLine() throws {
        let error = try #require(configError(Self.validText(extra: "coordinater:\n  port: 1")))
        #expect(error.key == "coordinater")
        #expect(error.line == 16)
        #expect(error.description.contains("unknown key"))
        let nested = try #require(configError(Self.validText().replacingOccurrences(of: "  m: 8", with: "  m: 8\n  tempreature: 0.7")))
        #expect(nested.key == "method.tempreature")
        #expect(nested.line == 6)
    }

    @Test func wrongTypeNamesTheKeyAndLine() throws {
        let error = try #require(configError(Self.validText().replacingOccurrences(of: "  m: 8", with: "  m: eight")))
        #expect(error.key == "method.m")
        #expect(error.line == 5)
        #expect(error.message.contains("expected an integer"))
        let quoted = try #require(configError(Self.validText().replacingOccurrences(of: "capacity: 4", with: "capacity: \"4\"")))
        #expect(quoted.key == "samplers[0].capacity")
        let list = try #require(configError(Self.validText().replacingOccurrences(of: "method:\n  m: 8", with: "method: [1, 2]")))
        #expect(list.key == "method")
    }

    @Test func impossibleValuesAreRefused() throws {
        let m = try #require(configError(Self.validText().replacingOccurrences(of: "  m: 8", with: "  m: 0")))
        #expect(m.key == "method.m")
        #expect(m.line == 5)
        #expect(m.message.contains("at least 1"))
        let perRequest = try #require(configError(Self.validText(), overrides: ["method.paths_per_request=9"]))
        #expect(perRequest.key == "method.paths_per_request")
        #expect(perRequest.fromOverride)
        #expect(perRequest.description.contains("--set method.paths_per_request"))
        let capacity = try #require(configError(Self.validText().replacingOccurrences(of: "capacity: 4", with: "capacity: 0")))
        #expect(capacity.key == "samplers[0].capacity")
        #expect(capacity.line == 9)
    }

    @Test func noSamplersIsRefused() throws {
        let text = Self.validText().replacingOccurrences(of: Self.samplersSection, with: "samplers: []")
        let error = try #require(configError(text))
        #expect(error.key == "samplers")
        #expect(error.message.contains("at least one sampler"))
        let missing = try #require(configError(Self.validText().replacingOccurrences(of: "samplers:", with: "samplerz:")))
        #expect(missing.description.contains("samplers"))
    }

    @Test func portClashIsRefused() throws {
        let error = try #require(configError(Self.validText(), overrides: ["coordinator.port=7400", "trainer.port=7400"]))
        #expect(error.message.contains("port clash"))
        #expect(error.message.contains("coordinator"))
        #expect(error.message.contains("trainer"))
        // The same port on two different hosts is fine.
        #expect(throws: Never.self) {
            _ = try load(Self.validText(), overrides: ["coordinator.port=7400", "trainer.port=7400", "trainer.host=127.0.0.2"])
        }
    }

    @Test func duplicateNamesAndMissingFilesAreRefused() throws {
        let names = try #require(configError(Self.validText(), overrides: ["trainer.name=verifier"]))
        #expect(names.message.contains("'verifier'"))
        let dataset = try #require(configError(Self.validText(), overrides: ["dataset.path=/nonexistent/data.jsonl"]))
        #expect(dataset.key == "dataset.path")
        #expect(dataset.message.contains("/nonexistent/data.jsonl"))
    }

    @Test func yamlSyntaxErrorsCarryTheLine() throws {
        let error = try #require(configError("name: x\nmethod:\n  m: [1, 2\n"))
        #expect(error.line != nil)
        #expect(error.message.contains("not valid YAML"))
    }

    @Test func malformedOverridesAreRefused() throws {
        #expect(configError(Self.validText(), overrides: ["method.m"])?.message.contains("key.path=value") == true)
        #expect(configError(Self.validText(), overrides: ["samplers.5.capacity=1"])?.message.contains("not an index") == true)
        #expect(configError(Self.validText(), overrides: ["name.inner=1"])?.message.contains("not a mapping") == true)
    }

    @Test func durationsAcceptUnits() throws {
        let config = try load(Self.validText(), overrides: ["coordinator.lease_timeout=250ms", "monitor.interval=2", "coordinator.stall_timeout=5m"])
        #expect(config.coordinator.leaseTimeout == .milliseconds(250))
        #expect(config.monitor.interval == .seconds(2))
        #expect(config.coordinator.stallTimeout == .seconds(300))
        let bad = try #require(configError(Self.validText(), overrides: ["coordinator.lease_timeout=soon"]))
        #expect(bad.message.contains("duration"))
    }
}
