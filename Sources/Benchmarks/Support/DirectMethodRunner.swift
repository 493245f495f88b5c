import Backends
import Foundation
import Rounds
import SelfImproveCore
import Verifiers

/// A method's questions run in this process straight against a model server, without the
/// cluster: the same state machines asking for the same requests, answered by one HTTP client
/// and a local verifier chain. `bench search` compares the cluster against it.
struct DirectMethodRunner: Sendable {
    let factory: any QuestionMethodFactory
    let backend: any ModelBackend
    let chain: VerifierChain
    let judge: StepJudge?
    /// Questions whose methods run at once (the coordinator's `open_questions`).
    let openQuestions: Int
    /// The run's sampling settings, for requests that do not set their own.
    let temperature: Double
    let maxTokens: Int
    let stop: [String]
    let seed: UInt64

    struct Outcome: Sendable {
        var results: [MethodResult]
        /// From the first request to the last reply.
        var seconds: Double
        var failedRequests: Int
    }

    private enum Reply: Sendable {
        case sampled(question: String, key: Int, paths: [SampledPath?])
        case scored(question: String, key: Int, scores: [Double], answers: [Answer?])
    }

    func run(_ questions: [Question]) async -> Outcome {
        let started = ContinuousClock.now
        var methods: [String: any QuestionMethod] = [:]
        var results: [MethodResult] = []
        var failed = 0
        var next = 0
        await withTaskGroup(of: Reply?.self) { group in
            func schedule(_ steps: [MethodStep], for question: Question) {
                for step in steps {
                    switch step {
                    case let .sample(work): group.addTask { await sample(work, for: question) }
                    case let .score(work): group.addTask { await score(work, for: question) }
                    case let .finish(result):
                        results.append(result)
                        methods[question.id] = nil
                    }
                }
            }
            func admit() {
                while methods.count < openQuestions, next < questions.count {
                    let question = questions[next]
                    next += 1
                    var method = factory.make(for: question)
                    let steps = method.start()
                    methods[question.id] = method
                    schedule(steps, for: question)
                }
            }
            admit()
            while let reply = await group.next() {
                guard let reply else {
                    failed += 1
                    continue
                }
                switch reply {
                case let .sampled(id, key, paths):
                    guard var method = methods[id] else { continue }
                    if paths.allSatisfy({ $0 == nil }) { failed += 1 }
                    let steps = method.sampled(key, paths: paths)
                    methods[id] = method
                    schedule(steps, for: method.question)
                case let .scored(id, key, scores, answers):
                    guard var method = methods[id] else { continue }
                    let steps = method.scored(key, scores: scores, answers: answers)
                    methods[id] = method
                    schedule(steps, for: method.question)
                }
                admit()
            }
        }
        return Outcome(results: results, seconds: (ContinuousClock.now - started).seconds, failedRequests: failed)
    }

    private func sample(_ work: SampleWork, for question: Question) async -> Reply {
        var request = SamplingRequest(prompt: work.prompt, n: work.n, temperature: work.temperature ?? temperature,
                                      maxTokens: work.maxTokens ?? maxTokens, stop: work.stop ?? stop,
                                      seed: seed &+ (work.seed ?? 0) &* 0x9E37_79B9_7F4A_7C15)
        request.topP = 1
        do {
            let response = try await backend.sample(request)
            var paths: [SampledPath?] = response.paths.map {
                SampledPath(text: $0.text, completionTokens: $0.completionTokens, finishReason: $0.finishReason, logProbability: $0.logProbability,
                           sampler: "direct", modelVersion: response.modelVersion)
            }
            while paths.count < work.n { paths.append(nil) }
            return .sampled(question: question.id, key: work.key, paths: Array(paths.prefix(work.n)))
        } catch {
            return .sampled(question: question.id, key: work.key, paths: Array(repeating: nil, count: work.n))
        }
    }

    private func score(_ work: ScoreWork, for question: Question) async -> Reply {
        var scores: [Double] = []
        var answers: [Answer?] = []
        for text in work.texts {
            let answer = AnswerExtractor.extract(from: text, as: question.kind)
            answers.append(answer)
            guard !text.isEmpty else {
                scores.append(0)
                continue
            }
            do {
                switch work.critic {
                case .verifiers: scores.append(try await chain.combinedScore(text, for: question, answer: answer))
                case .process, .value: scores.append(try await judge?.score(text, critic: work.critic, for: question) ?? 0.5)
                }
            } catch {
                scores.append(0)
            }
        }
        return .scored(question: question.id, key: work.key, scores: scores, answers: answers)
    }
}
