"""The value frameworks the UniVaR paper draws its core values from, with definitions written for univar.

Definitions are short paraphrases in our own words of the cited works (not quotations), so they can be
shipped under the project's licence. Each framework names its primary sources; a value's ``source`` is the
framework id used by ``univar values list --source``.
"""

from __future__ import annotations

FRAMEWORKS: dict[str, dict] = {
    "schwartz": {
        "title": "Schwartz theory of basic human values",
        "citation": "Schwartz, S. H. (1992). Universals in the content and structure of values. Advances in "
                    "Experimental Social Psychology, 25, 1-65; Schwartz, S. H. (2012). An overview of the Schwartz "
                    "theory of basic values. Online Readings in Psychology and Culture, 2(1).",
        "values": {
            "Self-Direction": "Independent thought and action: choosing one's own goals, creating and exploring.",
            "Stimulation": "Excitement, novelty and challenge in life.",
            "Hedonism": "Pleasure and sensuous gratification for oneself.",
            "Achievement": "Personal success through demonstrating competence according to social standards.",
            "Power": "Social status and prestige, control or dominance over people and resources.",
            "Security": "Safety, harmony and stability of society, of relationships and of oneself.",
            "Conformity": "Restraint of actions, inclinations and impulses likely to upset or harm others and to "
                          "violate social expectations or norms.",
            "Tradition": "Respect, commitment and acceptance of the customs and ideas that one's culture or religion "
                         "provides.",
            "Benevolence": "Preserving and enhancing the welfare of the people with whom one is in frequent personal "
                           "contact (the in-group).",
            "Universalism": "Understanding, appreciation, tolerance and protection of the welfare of all people and "
                            "of nature.",
            "Openness to Change": "Higher-order value: readiness for new ideas, actions and experiences "
                                  "(self-direction, stimulation, part of hedonism); opposed to conservation.",
            "Conservation": "Higher-order value: self-restriction, order and resistance to change (security, "
                            "conformity, tradition); opposed to openness to change.",
            "Self-Enhancement": "Higher-order value: pursuing one's own interests, success and dominance over others "
                                "(power, achievement); opposed to self-transcendence.",
            "Self-Transcendence": "Higher-order value: transcending self-interest for the welfare of others and of "
                                  "nature (universalism, benevolence); opposed to self-enhancement.",
        },
    },
    "wvs": {
        "title": "World Values Survey: Inglehart-Welzel cultural map dimensions",
        "citation": "Inglehart, R., & Baker, W. E. (2000). Modernization, cultural change, and the persistence of "
                    "traditional values. American Sociological Review, 65(1), 19-51; Inglehart, R., & Welzel, C. "
                    "(2005). Modernization, Cultural Change, and Democracy. Cambridge University Press; World Values "
                    "Survey, www.worldvaluessurvey.org.",
        "values": {
            "Traditional Values": "Emphasis on religion, parent-child ties, deference to authority, absolute "
                                  "standards and traditional family values; national pride; rejection of divorce, "
                                  "abortion, euthanasia.",
            "Secular-Rational Values": "Less emphasis on religion, traditional family values and authority; divorce, "
                                       "abortion, euthanasia and suicide seen as relatively acceptable.",
            "Survival Values": "Priority on economic and physical security; relatively ethnocentric outlook, low "
                               "trust and tolerance.",
            "Self-Expression Values": "Priority on environmental protection, tolerance of foreigners and sexual "
                                      "minorities, gender equality and participation in economic and political "
                                      "decisions.",
            "Materialism": "Priority on economic and physical security: order, stable prices, economic growth, strong "
                           "defence.",
            "Post-Materialism": "Priority on autonomy and self-expression: a say in government and at work, free "
                                "speech, a less impersonal society.",
        },
    },
    "hofstede": {
        "title": "Hofstede's dimensions of national culture",
        "citation": "Hofstede, G., Hofstede, G. J., & Minkov, M. (2010). Cultures and Organizations: Software of the "
                    "Mind (3rd ed.). McGraw-Hill; Hofstede, G. (2011). Dimensionalizing cultures: The Hofstede model "
                    "in context. Online Readings in Psychology and Culture, 2(1).",
        "values": {
            "Power Distance": "The extent to which the less powerful members of a society accept and expect that "
                              "power is distributed unequally.",
            "Individualism vs Collectivism": "Whether people see themselves as individuals looking after themselves "
                                             "and their immediate family, or as members of cohesive in-groups that "
                                             "protect them in exchange for loyalty.",
            "Masculinity vs Femininity": "Whether a society values achievement, assertiveness and material reward "
                                         "(masculine) or cooperation, modesty, caring for the weak and quality of "
                                         "life (feminine).",
            "Uncertainty Avoidance": "The extent to which members of a culture feel threatened by ambiguous or "
                                     "unknown situations and try to avoid them through rules and rigid codes.",
            "Long-Term vs Short-Term Orientation": "Fostering virtues aimed at future rewards, such as perseverance "
                                                   "and thrift, versus virtues tied to the past and present, such as "
                                                   "respect for tradition and fulfilling social obligations.",
            "Indulgence vs Restraint": "Whether a society allows relatively free gratification of desires related to "
                                       "enjoying life and having fun, or suppresses it through strict social norms.",
        },
    },
    "globe": {
        "title": "GLOBE cultural dimensions",
        "citation": "House, R. J., Hanges, P. J., Javidan, M., Dorfman, P. W., & Gupta, V. (Eds.) (2004). Culture, "
                    "Leadership, and Organizations: The GLOBE Study of 62 Societies. Sage.",
        "values": {
            "Performance Orientation": "The degree to which a society encourages and rewards group members for "
                                       "performance improvement and excellence.",
            "Assertiveness": "The degree to which individuals are assertive, confrontational and aggressive in their "
                             "relationships with others.",
            "Future Orientation": "The extent to which individuals engage in future-oriented behaviours such as "
                                  "planning, investing in the future and delaying gratification.",
            "Humane Orientation": "The degree to which a society encourages and rewards individuals for being fair, "
                                  "altruistic, generous, caring and kind to others.",
            "Institutional Collectivism": "The degree to which institutional practices encourage and reward "
                                          "collective distribution of resources and collective action.",
            "In-Group Collectivism": "The degree to which individuals express pride, loyalty and cohesiveness in "
                                     "their organisations or families.",
            "Gender Egalitarianism": "The degree to which a collective minimises gender inequality.",
            "Power Distance (GLOBE)": "The extent to which members of a collective expect power to be distributed "
                                      "unequally.",
            "Uncertainty Avoidance (GLOBE)": "The extent to which a society relies on social norms, rules and "
                                             "procedures to alleviate the unpredictability of future events.",
        },
    },
    "rokeach": {
        "title": "Rokeach Value Survey (terminal and instrumental values)",
        "citation": "Rokeach, M. (1973). The Nature of Human Values. Free Press.",
        "values": {
            # terminal values: desirable end-states of existence
            "A Comfortable Life": "Terminal value: a prosperous life, free of material want.",
            "An Exciting Life": "Terminal value: a stimulating, active life.",
            "A Sense of Accomplishment": "Terminal value: making a lasting contribution.",
            "A World at Peace": "Terminal value: a world free of war and conflict.",
            "A World of Beauty": "Terminal value: the beauty of nature and of the arts.",
            "Equality": "Terminal value: brotherhood and equal opportunity for all.",
            "Family Security": "Terminal value: taking care of loved ones.",
            "Freedom": "Terminal value: independence and free choice.",
            "Happiness": "Terminal value: contentedness.",
            "Inner Harmony": "Terminal value: freedom from inner conflict.",
            "Mature Love": "Terminal value: sexual and spiritual intimacy.",
            "National Security": "Terminal value: protection of one's country from attack.",
            "Pleasure": "Terminal value: an enjoyable, leisurely life.",
            "Salvation": "Terminal value: a saved, eternal life.",
            "Self-Respect": "Terminal value: self-esteem.",
            "Social Recognition": "Terminal value: respect and admiration from others.",
            "True Friendship": "Terminal value: close companionship.",
            "Wisdom": "Terminal value: a mature understanding of life.",
            # instrumental values: desirable modes of conduct
            "Ambitious": "Instrumental value: hard-working and aspiring.",
            "Broad-Minded": "Instrumental value: open-minded.",
            "Capable": "Instrumental value: competent and effective.",
            "Cheerful": "Instrumental value: light-hearted and joyful.",
            "Clean": "Instrumental value: neat and tidy.",
            "Courageous": "Instrumental value: standing up for one's beliefs.",
            "Forgiving": "Instrumental value: willing to pardon others.",
            "Helpful": "Instrumental value: working for the welfare of others.",
            "Honest": "Instrumental value: sincere and truthful.",
            "Imaginative": "Instrumental value: daring and creative.",
            "Independent": "Instrumental value: self-reliant and self-sufficient.",
            "Intellectual": "Instrumental value: intelligent and reflective.",
            "Logical": "Instrumental value: consistent and rational.",
            "Loving": "Instrumental value: affectionate and tender.",
            "Obedient": "Instrumental value: dutiful and respectful.",
            "Polite": "Instrumental value: courteous and well-mannered.",
            "Responsible": "Instrumental value: dependable and reliable.",
            "Self-Controlled": "Instrumental value: restrained and self-disciplined.",
        },
    },
}
