package config

import (
	"math"
	"os"
	"reflect"
	"testing"
)

// finite reports the path of the first NaN or infinite float in v.
func finite(v reflect.Value, path string) string {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return path
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				if p := finite(v.Field(i), path+"."+v.Type().Field(i).Name); p != "" {
					return p
				}
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if p := finite(v.Index(i), path+"[]"); p != "" {
				return p
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if p := finite(v.MapIndex(k), path+"{}"); p != "" {
				return p
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return finite(v.Elem(), path)
		}
	}
	return ""
}

// FuzzLoad feeds arbitrary bytes to the config file path of Load (seeds in
// testdata/fuzz/FuzzLoad, plus the example and compose configs): an error,
// or a config that validates again and whose derived values (templates,
// review rules, listen address) can be computed. Never a panic.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"../configs/vms.example.yaml", "../configs/compose.yaml", "defaults.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := load("fuzz.yaml", data, func(c *Config) {
			if c.Policy.HMACSecret == "" && c.Policy.HMACSecretEnv == "" {
				c.Policy.HMACSecret = "fuzz-secret-0123456789"
			}
		})
		if err != nil {
			if c != nil {
				t.Fatal("a config with an error")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("loaded, then invalid: %v", err)
		}
		if p := finite(reflect.ValueOf(*c), "config"); p != "" {
			t.Fatalf("valid config with a NaN or infinite %s", p)
		}
		c.TemplateDefs()
		c.TemplateRegistry()
		c.Policy.ReviewRules()
		if _, _, err := c.SIP.ListenAddr(); err != nil {
			t.Fatalf("listen address of a valid config: %v", err)
		}
		for _, a := range c.API.Apps {
			if a.KeyFile == "" {
				_, _ = a.ResolveKey()
			}
		}
	})
}
