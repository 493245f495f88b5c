import SelfImproveCore

extension ClusterConfig.MethodSettings {
    /// The factory of the method `method.name` picks, with this run's settings.
    /// - Parameters:
    ///   - scoresPaths: Whether the run has a verifier tier to score paths.
    ///   - exemplars: The few-shot exemplars of the run's prompts.
    ///   - template: How a question becomes a prompt (``ClusterConfig/PromptTemplate``).
    func factory(scoresPaths: Bool, exemplars: [Exemplar], template: ClusterConfig.PromptTemplate = .fewShotChainOfThought) -> any QuestionMethodFactory {
        if let search {
            return SearchMethodFactory(settings: search, prompts: PromptBuilder(exemplars: exemplars), answerStop: stop)
        }
        if let refine, name == .verifyRefine {
            return VerifyRefineMethodFactory(settings: VerifyRefineMethod.Settings(
                prompts: PromptBuilder(exemplars: exemplars), threshold: refine.threshold, critiqueTemperature: refine.critiqueTemperature,
                critiqueMaxTokens: refine.critiqueMaxTokens, refinementTemperature: refine.refinementTemperature))
        }
        if let refine {
            return RefineMethodFactory(settings: RefineMethod.Settings(
                n: m, prompts: PromptBuilder(exemplars: exemplars), rightAt: refine.rightAt, maxCritiques: refine.maxCritiques,
                critiqueTemperature: refine.critiqueTemperature, critiqueMaxTokens: refine.critiqueMaxTokens,
                refinementTemperature: refine.refinementTemperature, rebalance: refine.rebalance))
        }
        return SelfConsistencyMethodFactory(settings: SelfConsistencyMethod.Settings(
            m: m, prompts: PromptBuilder(exemplars: exemplars), weighted: vote == .weighted,
            minConfidence: minConfidence, minPathScore: minPathScore, scoresPaths: scoresPaths, rawPrompts: template == .raw))
    }
}
