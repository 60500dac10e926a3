"""Example network specs (*.cnn, *.yaml), shipped inside the package as cnnc.specs."""
