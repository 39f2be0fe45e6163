package templates

import (
	"regexp"
	"strings"
)

// DefaultBannedWords is the built-in list of words no template or parameter
// may contain: gambling, loans and credit offers, fraud-style wording and
// hard-sell marketing, in Chinese and English. Extend or trim it with
// policy.banned_words in the config.
var DefaultBannedWords = []string{
	// gambling
	"赌博", "博彩", "赌场", "百家乐", "六合彩", "时时彩", "彩票推荐", "下注", "棋牌游戏", "网上赌",
	"casino", "gambling", "sports betting", "place your bet", "jackpot", "baccarat", "online betting",
	// loans and credit offers
	"贷款", "网贷", "借贷", "放款", "无抵押", "低息", "秒批", "额度提升", "套现", "信用卡代还",
	"payday loan", "instant loan", "loan approved", "no credit check", "debt relief", "low interest loan",
	// fraud-style wording
	"安全账户", "中奖", "领奖", "刷单", "返利", "退款理赔", "涉嫌洗钱", "公检法", "验证码发给", "转账到",
	"you have won", "claim your prize", "wire transfer", "gift card", "bitcoin", "crypto investment",
	"safe account", "your account will be suspended", "tax refund", "send us the code",
	// hard-sell marketing
	"限时抢购", "免费领取", "加微信", "点击链接", "回复TD", "最后一天",
	"act now", "limited time offer", "click the link", "100% free", "risk-free", "guaranteed income",
}

// WordList finds listed words in a text, ignoring case. A word of ASCII
// letters matches whole words only ("bet" does not match "better"); any
// other word (Chinese) matches wherever it appears.
type WordList struct {
	words []string
	res   []*regexp.Regexp
}

// NewWordList compiles words; empty entries are skipped.
func NewWordList(words []string) *WordList {
	l := &WordList{}
	seen := map[string]bool{}
	for _, w := range words {
		w = strings.TrimSpace(w)
		if w == "" || seen[strings.ToLower(w)] {
			continue
		}
		seen[strings.ToLower(w)] = true
		pat := regexp.QuoteMeta(w)
		if isASCIIWord(w) {
			pat = `\b` + pat + `\b`
		}
		l.words = append(l.words, w)
		l.res = append(l.res, regexp.MustCompile(`(?i)`+pat))
	}
	return l
}

// Words returns the list.
func (l *WordList) Words() []string {
	if l == nil {
		return nil
	}
	return append([]string(nil), l.words...)
}

// Find returns the listed words that s contains, in list order, or nil.
func (l *WordList) Find(s string) []string {
	if l == nil {
		return nil
	}
	var found []string
	for i, re := range l.res {
		if re.MatchString(s) {
			found = append(found, l.words[i])
		}
	}
	return found
}

func isASCIIWord(w string) bool {
	for _, r := range w {
		if r > 127 {
			return false
		}
	}
	first, last := rune(w[0]), rune(w[len(w)-1])
	isWord := func(r rune) bool {
		return r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
	}
	return isWord(first) && isWord(last)
}
