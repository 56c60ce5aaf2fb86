.PHONY: test demo dist lab-down
test:      ## the whole suite, set-up included
	bash scripts/test.sh
demo:      ## bring the lab up and run kubectl-whose against it
	bash scripts/demo.sh
dist:      ## krew archive + krew-manifest.yaml with its sha256
	python3 scripts/dist.py
lab-down:
	bash scripts/demo.sh --down
