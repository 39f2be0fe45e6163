package tts

import "testing"

func TestCodeText(t *testing.T) {
	for _, tc := range []struct{ prefix, digits, want string }{
		{"Your verification code is", "1234", "Your verification code is 1, 2, 3, 4."},
		{"Your verification code is ", "12 34-56", "Your verification code is 1, 2, 3, 4, 5, 6."},
		{"您的验证码是", "1234", "您的验证码是 1，2，3，4。"},
		{"您的验证码是：", "908", "您的验证码是： 9，0，8。"},
		{"", "42", "4, 2."},
		{"Code", "", "Code"},
		{"Code", "A1", "Code A, 1."},
	} {
		if got := CodeText(tc.prefix, tc.digits); got != tc.want {
			t.Errorf("CodeText(%q, %q) = %q, want %q", tc.prefix, tc.digits, got, tc.want)
		}
	}
}
