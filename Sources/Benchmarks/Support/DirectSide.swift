import Backends
import CommandLineSupport
import Foundation
import Rounds
import SelfImproveCore

/// `bench backend`'s direct side: the requests a sampler makes, sent straight to the server by
/// one HTTP client keeping `capacity` questions in flight.
struct DirectSide: Sendable {
    let workload: BackendWorkload
    let baseURL: String
    let slots: Int
    let capacity: Int

    /// One timed request, for the evidence file.
    private struct Request: Sendable {
        var question: Int
        var sent: ContinuousClock.Instant
        var answered: ContinuousClock.Instant
        var paths: Int
        var tokens: Int
    }

    /// Draws the paths of the first `questions` problems; writes each request's timing to `log`.
    func run(questions: Int, log: URL?, progress: BenchProgress) async throws -> BackendSideRun {
        let started = ContinuousClock.now
        var settings = OpenAICompatibleBackend.Configuration(baseURL: baseURL)
        settings.concurrency = slots
        settings.maxChoicesPerRequest = slots
        settings.logProbabilities = true
        let client = try OpenAICompatibleBackend(configuration: settings)
        let prompts = PromptBuilder(exemplars: ExemplarFile.arithmetic)
        let workload = workload
        let firstRequest = ContinuousClock.now
        let requests: [Request]
        do {
            requests = try await withThrowingTaskGroup(of: Request.self) { group in
                var next = 0
                var done: [Request] = []
                func add() {
                    let index = next
                    next += 1
                    group.addTask {
                        let problem = workload.problems[index]
                        progress.requestSent()
                        let sent = ContinuousClock.now
                        let response = try await client.sample(SamplingRequest(
                            prompt: prompts.fewShotChainOfThought(problem.question), n: workload.m, temperature: workload.temperature,
                            maxTokens: workload.maxTokens, stop: workload.stop, seed: workload.seed))
                        progress.requestAnswered(paths: response.paths.count)
                        return Request(question: index, sent: sent, answered: .now, paths: response.paths.count,
                                       tokens: response.paths.map(\.completionTokens).reduce(0, +))
                    }
                }
                while next < min(capacity, questions) { add() }
                while let request = try await group.next() {
                    done.append(request)
                    if next < questions { add() }
                }
                return done
            }
        } catch {
            await client.shutdown()
            throw error
        }
        let lastPath = requests.map(\.answered).max() ?? firstRequest
        await client.shutdown()
        let finished = ContinuousClock.now
        if let log {
            let writer = try JSONLinesWriter(path: log.path)
            for request in requests.sorted(by: { $0.sent < $1.sent }) {
                try writer.write(DirectRequestLine(question: request.question, sentS: (request.sent - firstRequest).seconds,
                                                   answeredS: (request.answered - firstRequest).seconds,
                                                   paths: request.paths, tokens: request.tokens))
            }
            try writer.close()
        }
        return BackendSideRun(side: "direct", tokens: requests.map(\.tokens).reduce(0, +), paths: requests.map(\.paths).reduce(0, +),
                              steadySeconds: (lastPath - firstRequest).seconds, startupSeconds: (firstRequest - started).seconds,
                              tailSeconds: (finished - lastPath).seconds, wallSeconds: (finished - started).seconds,
                              evidence: log?.lastPathComponent ?? "")
    }
}

/// A line of `rep-N-direct.jsonl`: one question's request, in seconds from the first request.
private struct DirectRequestLine: Encodable {
    var question: Int
    var sentS: Double
    var answeredS: Double
    var paths: Int
    var tokens: Int

    enum CodingKeys: String, CodingKey {
        case question, paths, tokens
        case sentS = "sent_s"
        case answeredS = "answered_s"
    }
}
