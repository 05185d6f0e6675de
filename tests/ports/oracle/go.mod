module nri-rs/tests/ports/oracle

go 1.22

require (
	github.com/sirupsen/logrus v1.9.3
	gopkg.in/yaml.v2 v2.4.0
	sigs.k8s.io/yaml v1.3.0
)

require (
	github.com/stretchr/testify v1.8.4 // indirect
	golang.org/x/sys v0.12.0 // indirect
)
