import Backends
import Foundation
import SelfImproveCore
import Testing

@Suite("OpenAI wire format")
struct OpenAIWireTests {
    @Test func completionsBodyCarriesEverySamplingSetting() throws {
        let request = SamplingRequest(prompt: "Q: 1+1?\nA:", n: 3, temperature: 0.5, topP: 0.9, maxTokens: 64, stop: ["\nQ:"])
        let body = OpenAIWire.requestBody(api: .completions, model: "m", request: request, n: 3, seed: 7, logProbabilities: true)
        let json = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        #expect(json["prompt"] as? String == "Q: 1+1?\nA:")
        #expect(json["n"] as? Int == 3)
        #expect(json["temperature"] as? Double == 0.5)
        #expect(json["top_p"] as? Double == 0.9)
        #expect(json["max_tokens"] as? Int == 64)
        #expect(json["stop"] as? [String] == ["\nQ:"])
        #expect(json["seed"] as? Int == 7)
        #expect(json["model"] as? String == "m")
        #expect(json["logprobs"] as? Int == 1)
    }

    @Test func fewShotPromptsBecomeChatTurns() {
        let prompts = PromptBuilder(exemplars: [Exemplar(question: "Q one?", reasoning: "1 + 1 = 2.", answer: "2")])
        let messages = OpenAIWire.chatMessages(fromFewShotPrompt: prompts.fewShotChainOfThought("Q two?"))
        #expect(messages == [
            .init(role: "user", content: "Q one?"),
            .init(role: "assistant", content: "1 + 1 = 2. The answer is 2."),
            .init(role: "user", content: "Q two?"),
        ])
        #expect(OpenAIWire.chatMessages(fromFewShotPrompt: "Solve: 2+2") == [.init(role: "user", content: "Solve: 2+2")])
    }

    @Test func parsesChoicesInIndexOrderWithTokensAndLogProbabilities() throws {
        let reply = """
            {"model":"m1","choices":[
              {"index":1,"text":" b","finish_reason":"length","logprobs":{"content":[{"logprob":-1.0},{"logprob":-0.5}]}},
              {"index":0,"text":" a","finish_reason":"stop","logprobs":{"token_logprobs":[-0.25,null,-0.25]}}],
             "usage":{"prompt_tokens":5,"completion_tokens":2}}
            """
        let parsed = try OpenAIWire.parseReply(Data(reply.utf8), api: .completions)
        #expect(parsed.paths.map(\.text) == [" a", " b"])
        #expect(parsed.paths.map(\.finishReason) == ["stop", "length"])
        #expect(parsed.paths.map(\.completionTokens) == [2, 2])
        #expect(parsed.paths.map(\.logProbability) == [-0.5, -1.5])
        #expect(parsed.model == "m1")
        #expect(parsed.promptTokens == 5)
    }

    @Test func firstTokenAlternativesAreAskedForAndReadInBothStyles() throws {
        var request = SamplingRequest(prompt: "Judgement:", n: 1, temperature: 0, maxTokens: 1)
        request.firstTokenAlternatives = 20
        let completions = try #require(try JSONSerialization.jsonObject(with: OpenAIWire.requestBody(
            api: .completions, model: nil, request: request, n: 1, seed: nil, logProbabilities: false)) as? [String: Any])
        #expect(completions["logprobs"] as? Int == 20)
        let chat = try #require(try JSONSerialization.jsonObject(with: OpenAIWire.requestBody(
            api: .chat, model: nil, request: request, n: 1, seed: nil, logProbabilities: false)) as? [String: Any])
        #expect(chat["logprobs"] as? Bool == true && chat["top_logprobs"] as? Int == 20)
        // llama.cpp's server (and chat replies): per token, a list of alternatives.
        let llama = """
            {"choices":[{"index":0,"text":" The","logprobs":{"content":[{"token":" The","logprob":-1.1,
              "top_logprobs":[{"token":" The","logprob":-1.1},{"token":" incorrect","logprob":-3.2},{"token":" correct","logprob":-3.8}]}]}}]}
            """
        let parsed = try OpenAIWire.parseReply(Data(llama.utf8), api: .completions)
        #expect(parsed.paths.first?.firstTokenAlternatives == [" The": -1.1, " incorrect": -3.2, " correct": -3.8])
        // The legacy completions style: per position, a token-to-log-probability object.
        let legacy = #"{"choices":[{"text":" correct","logprobs":{"token_logprobs":[-0.1],"top_logprobs":[{" correct":-0.1," incorrect":-2.5}]}}]}"#
        #expect(try OpenAIWire.parseReply(Data(legacy.utf8), api: .completions).paths.first?.firstTokenAlternatives == [" correct": -0.1, " incorrect": -2.5])
        // Not asked for: none.
        #expect(try OpenAIWire.parseReply(Data(#"{"choices":[{"text":"x"}]}"#.utf8), api: .completions).paths.first?.firstTokenAlternatives == nil)
    }

    @Test func withoutLogProbabilitiesTheTotalIsSplitByLength() throws {
        let reply = #"{"choices":[{"text":"aaaa"},{"text":"aaaaaaaaaaaa"}],"usage":{"completion_tokens":8}}"#
        let parsed = try OpenAIWire.parseReply(Data(reply.utf8), api: .completions)
        #expect(parsed.paths.map(\.completionTokens) == [2, 6])
    }

    @Test func chatRepliesReadTheMessageContent() throws {
        let reply = #"{"choices":[{"index":0,"message":{"role":"assistant","content":"The answer is 4."},"finish_reason":"stop"}]}"#
        let parsed = try OpenAIWire.parseReply(Data(reply.utf8), api: .chat)
        #expect(parsed.paths.first?.text == "The answer is 4.")
    }

    @Test(arguments: [
        ("", "not the JSON"),
        (#"{"choices":[{"text":"cut sh"#, "not the JSON"),
        (#"<html>502 Bad Gateway</html>"#, "not the JSON"),
        (#"{"object":"error"}"#, "no \"choices\""),
        (#"{"choices":[]}"#, "\"choices\" is empty"),
        (#"{"choices":[{"index":0,"finish_reason":"stop"}]}"#, "choice 0 has no text"),
        (#"{"choices":"many"}"#, "not the JSON"),
    ])
    func malformedRepliesNameWhatIsWrongAndShowTheirStart(body: String, reason: String) {
        #expect {
            _ = try OpenAIWire.parseReply(Data(body.utf8), api: .completions)
        } throws: { error in
            guard let error = error as? OpenAIWire.MalformedReply else { return false }
            return error.reason.contains(reason) && (body.isEmpty ? error.bodyStart == "(empty)" : error.bodyStart.hasPrefix(String(body.prefix(10))))
        }
    }

    @Test func retryDelaysStayUnderTheirCaps() {
        let policy = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(100), maxDelay: .milliseconds(800))
        let seed = ProcessInfo.processInfo.environment["SELFIMPROVE_TEST_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0 ... .max)
        var random = SplitMix64(seed: seed)
        for attempt in 1 ... 10 {
            let cap = min(Duration.milliseconds(800), .milliseconds(100) * (1 << (attempt - 1)))
            for _ in 0 ..< 50 {
                let delay = policy.delay(afterAttempt: attempt, using: &random)
                #expect(delay >= .zero && delay <= cap, "seed \(seed)")
            }
        }
        #expect(policy.delay(afterAttempt: 1, retryAfter: .seconds(30), using: &random) == .milliseconds(800))
        #expect(policy.delay(afterAttempt: 1, retryAfter: .milliseconds(300), using: &random) == .milliseconds(300))
    }
}
