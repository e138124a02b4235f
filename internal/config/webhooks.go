package config

import (
	"fmt"
	"net/url"

	"gopkg.in/yaml.v3"
)

// Webhook is one endpoint of the config file's `webhooks:` list (README, "Webhooks").
type Webhook struct {
	// Name keeps the endpoint's delivery state (its cursor, its dead letters) and labels its metrics; by
	// default the URL without its query, so that reordering the list changes nothing.
	Name   string   `yaml:"name"`
	URL    string   `yaml:"url"`
	Secret string   `yaml:"secret"`
	Events []string `yaml:"events"` // kinds; empty = all
	Stages []string `yaml:"stages"` // stage ids or ARNs; empty = all
}

// fileWebhooks takes `webhooks:` and `consoleKey:` out of the config file's settings.
func (c *Config) fileWebhooks(file map[string]any) error {
	if raw, ok := file["consoleKey"]; ok {
		s, ok := raw.(string)
		if !ok || len(s) < 16 {
			return fmt.Errorf("consoleKey: a string of 16 characters or more")
		}
		c.ConsoleKey = s
		delete(file, "consoleKey")
	}
	raw, ok := file["webhooks"]
	if !ok {
		return nil
	}
	delete(file, "webhooks")
	b, _ := yaml.Marshal(raw)
	if err := yaml.Unmarshal(b, &c.Webhooks); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	names := map[string]bool{}
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("webhooks[%d]: url %q is not an http(s) URL", i, w.URL)
		}
		if len(w.Secret) < 16 {
			return fmt.Errorf("webhooks[%d]: secret: 16 characters or more", i)
		}
		if w.Name == "" {
			u.RawQuery, u.Fragment, u.User = "", "", nil
			w.Name = u.String()
		}
		if names[w.Name] {
			return fmt.Errorf("webhooks[%d]: endpoint %q is configured twice", i, w.Name)
		}
		names[w.Name] = true
	}
	return nil
}
